"""Probing plots (rules `plot_probing`, `plot_probing_overview`): `kdprobe.report.probing_plots.plot_task` for one
downstream task (`wildcards.task`), else `plot_overview` (outputs `plot` and `table`).

`params.entries`: `[scope, model kind, probe table, model directory or hub id]` of every model to plot.
"""

from kdprobe.report.probing_plots import plot_overview, plot_task
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

entries = [tuple(entry) for entry in snakemake.params.entries]
task = getattr(snakemake.wildcards, "task", None)

run(
    snakemake,
    lambda: plot_task(entries, task, str(snakemake.output[0]))
    if task
    else plot_overview(entries, str(snakemake.output.plot), str(snakemake.output.table)),
    device=False,
)
