"""Probing plots (rules `plot_probing`, `plot_probing_selectivity`, `plot_probing_mdl`, `plot_probing_overview`):
for one downstream task (`wildcards.task`) `kdprobe.report.probing_plots.plot_task`, `plot_selectivity` or
`plot_mdl` (`params.figure`: accuracy | selectivity | mdl), else `plot_overview` (outputs `plot` and `table`).

`params.entries`: `[scope, model kind, probe table, model directory or hub id, extra seeds' tables]` of every
model to plot.
"""

from kdprobe.report.probing_plots import plot_mdl, plot_overview, plot_selectivity, plot_task
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

entries = [tuple(entry) for entry in snakemake.params.entries]
task = getattr(snakemake.wildcards, "task", None)
FIGURES = {"accuracy": plot_task, "selectivity": plot_selectivity, "mdl": plot_mdl}

run(
    snakemake,
    lambda: FIGURES[snakemake.params.figure](entries, task, str(snakemake.output[0]))
    if task
    else plot_overview(entries, str(snakemake.output.plot), str(snakemake.output.table)),
    device=False,
)
