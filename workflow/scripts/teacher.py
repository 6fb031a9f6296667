"""Fine-tune the teacher on one task: `kdprobe.teacher.finetune`.

Expects `input.train` (with `dev.tsv` and `labels.txt` beside it), optional `input.base` (a local model
directory; else `params.settings["model"]`, a hub id), `params.settings` (the task's `teacher` section),
`params.state`, and outputs `model` (directory), `curve`, `metrics`.
"""

from pathlib import Path

from kdprobe.teacher import finetune
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

settings = dict(snakemake.params.settings)
model = getattr(snakemake.input, "base", None) or settings["model"]

run(
    snakemake,
    lambda device: finetune(
        str(model), Path(snakemake.input.train).parent, snakemake.wildcards.task, settings,
        snakemake.output.model, snakemake.params.state, device,
        curve_path=snakemake.output.curve, metrics_path=snakemake.output.metrics,
    ),
)
