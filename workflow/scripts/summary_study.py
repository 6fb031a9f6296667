"""The study-wide table and the score-against-size-and-latency plot: `kdprobe.report.summary.write_study_summary`.

Expects the per-task tables as `input` (rule `summary_study`); writes `output.table` (CSV) and `output.plot` (PNG).
"""

from kdprobe.report.summary import write_study_summary
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

run(
    snakemake,
    lambda: write_study_summary(
        [str(f) for f in snakemake.input], str(snakemake.output.table), str(snakemake.output.plot)
    ),
    device=False,
)
