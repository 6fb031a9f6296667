"""How close this run came to the reference figures: `kdprobe.report.summary.write_reproduction`.

Expects `input.reference` (the reference CSV: the thesis's, shipped with kdprobe, or `summary.reproduction.reference`),
`input.study` (`results/summary/study.csv`) and `input.benchmarks` (the jobs' benchmark files), `params.tolerance`
(`summary.reproduction.tolerance`); writes `output.table` (CSV) and `output.plot` (PNG) (rule `summary_reproduction`).
"""

from kdprobe.report.reproduction import Tolerance
from kdprobe.report.summary import write_reproduction
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

run(
    snakemake,
    lambda: write_reproduction(
        str(snakemake.input.reference), str(snakemake.input.study), [str(f) for f in snakemake.input.benchmarks],
        Tolerance.from_config(dict(snakemake.params.tolerance)), str(snakemake.output.table),
        str(snakemake.output.plot),
    ),
    device=False,
)
