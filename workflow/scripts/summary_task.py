"""One task's summary table: `kdprobe.summary.write_task_summary` (rule `summary_task`).

Expects `input.labels`, `input.dev`, `input.test` (the task's splits), `input.predictions_dev`,
`input.predictions_test` and `input.speed` (one file per model, in the order of `params.models`, the teacher first);
writes `output.table` (CSV).
"""

from kdprobe.summary import write_task_summary
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

inputs, models = snakemake.input, list(snakemake.params.models)
predictions = {
    model: {"dev": str(dev), "test": str(test)}
    for model, dev, test in zip(models, inputs.predictions_dev, inputs.predictions_test, strict=True)
}
speeds = {model: str(path) for model, path in zip(models, inputs.speed, strict=True)}

run(
    snakemake,
    lambda device: write_task_summary(
        snakemake.wildcards.task, str(inputs.labels), {"dev": str(inputs.dev), "test": str(inputs.test)},
        predictions, speeds, str(snakemake.output.table),
    ),
)
