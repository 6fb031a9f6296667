"""One ablation's table and plot on one task: `kdprobe.report.ablations.write_ablation_summary` (rule
`ablation_summary`).

Expects `wildcards.task`, `wildcards.ablation`; `input.labels`, `input.dev` (the task's split), `input.metrics`,
`input.predictions`, `input.benchmarks` (each run's, in the order of `params.runs`: [{point, labels, seed}]),
`params.reference` (the reference point's label), `params.student`, `params.bootstrap` ({samples, seed}); writes
`output.table` (CSV) and `output.plot` (PNG).
"""

from pathlib import Path

from kdprobe.report.ablations import AblationRun, Bootstrap, write_ablation_summary
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive


def _summary():
    runs = [AblationRun(point["point"], dict(point["labels"]), int(point["seed"]), Path(metrics), Path(predictions),
                        Path(benchmark))
            for point, metrics, predictions, benchmark in zip(
                snakemake.params.runs, snakemake.input.metrics, snakemake.input.predictions,
                snakemake.input.benchmarks, strict=True)]
    write_ablation_summary(snakemake.wildcards.task, snakemake.wildcards.ablation, snakemake.params.student, runs,
                           snakemake.params.reference, snakemake.input.labels, snakemake.input.dev,
                           Bootstrap(**snakemake.params.bootstrap), snakemake.output.table, snakemake.output.plot)


run(snakemake, _summary, device=False)
