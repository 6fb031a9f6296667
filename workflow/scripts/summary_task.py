"""One task's summary tables: `kdprobe.report.summary.write_task_summary` (rule `summary_task`).

Expects `input.labels`, `input.dev`, `input.test` (the task's splits), `input.predictions_dev`,
`input.predictions_test` and `input.speed` (one file per model, in the order of `params.models`, the teacher first),
`input.seed_predictions` (each extra seed's dev and test predictions, in the order of `params.seeds`:
{model: [[seed, variant or None], ...]}); writes `output.table` and `output.seeds` (CSV).
"""

from kdprobe.report.summary import write_task_summary
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

inputs, models = snakemake.input, list(snakemake.params.models)
extra = iter(str(path) for path in inputs.seed_predictions)
runs = {}
for model, dev, test in zip(models, inputs.predictions_dev, inputs.predictions_test, strict=True):
    (seed, own), *others = snakemake.params.seeds[model]
    runs[model] = [(seed, None, {"dev": str(dev), "test": str(test)})]
    runs[model] += [(seed, variant, {"dev": next(extra), "test": next(extra)}) for seed, variant in others]
if next(extra, None) is not None:
    raise ValueError("more seed predictions than params.seeds lists")
speeds = {model: str(path) for model, path in zip(models, inputs.speed, strict=True)}

run(
    snakemake,
    lambda: write_task_summary(
        snakemake.wildcards.task, str(inputs.labels), {"dev": str(inputs.dev), "test": str(inputs.test)},
        runs, speeds, str(snakemake.output.table), str(snakemake.output.seeds),
    ),
    device=False,
)
