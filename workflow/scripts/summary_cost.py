"""What the study cost, from the jobs' benchmark files: `kdprobe.report.summary.write_cost_summary` (rule `summary_cost`).

Expects the benchmark files as `input` (`benchmarks/<rule>/<task>...tsv`) and `params.gpus` (GPUs per rule, from
`resources:`); writes `output.table` (CSV) and `output.plot` (PNG).
"""

from kdprobe.report.summary import write_cost_summary
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

run(
    snakemake,
    lambda: write_cost_summary(
        [str(f) for f in snakemake.input], dict(snakemake.params.gpus), str(snakemake.output.table),
        str(snakemake.output.plot),
    ),
    device=False,
)
