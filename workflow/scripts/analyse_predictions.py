"""Prediction analysis of one task: `kdprobe.report.analysis.analyse` (rule `analyse_predictions`).

Expects one input per model (named by model, `params.models` giving their order), the task's data files
(`input.train`, `input.dev`, `input.test`, `input.labels`, for the class distribution), `params.settings` (the
`analysis` config section) and the named outputs of `kdprobe.report.predictions.OUTPUTS`.
"""

from pathlib import Path

from kdprobe.report.analysis import analyse
from kdprobe.report.predictions import OUTPUTS
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

run(
    snakemake,
    lambda: analyse(
        {model: str(snakemake.input[model]) for model in snakemake.params.models},
        snakemake.wildcards.task,
        dict(snakemake.params.settings),
        {key: str(snakemake.output[key]) for key in OUTPUTS},
        Path(snakemake.input.labels).parent,
    ),
    device=False,
)
