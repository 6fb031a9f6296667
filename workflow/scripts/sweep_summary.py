"""One sweep's table and plots on one task: `kdprobe.report.sweeps.write_sweep_summary` (rule `sweep_summary`).

Expects `wildcards.task`, `wildcards.sweep`; `input.base` (the student's own `metrics.json`), `input.metrics` and
`input.curves` (each grid point's, in the order of `params.points`: [{name, values}]), `params.student`; writes
`output.table` (CSV), `output.plot` and `output.curves` (PNG).
"""

from kdprobe.report.sweeps import write_sweep_summary
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

run(
    snakemake,
    lambda: write_sweep_summary(
        snakemake.wildcards.task, snakemake.wildcards.sweep, snakemake.params.student,
        [dict(point) for point in snakemake.params.points], [str(p) for p in snakemake.input.metrics],
        [str(p) for p in snakemake.input.curves], str(snakemake.input.base),
        str(snakemake.output.table), str(snakemake.output.plot), str(snakemake.output.curves),
    ),
    device=False,
)
