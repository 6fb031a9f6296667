"""Fine-tune the teacher on one task: `kdprobe.teacher.finetune`.

Expects `input.train` (with `dev.tsv` and `labels.txt` beside it), optional `input.base` (a local model
directory; else `params.settings["model"]`, a hub id), `params.settings` (the task's `teacher` section),
`params.state`, and outputs `model` (directory), `curve`, `metrics`; with `config["tensorboard"]`, TensorBoard
events beside `log[0]`.
"""

from pathlib import Path

from kdprobe.teacher import finetune
from kdprobe.training import RunFiles, tensorboard, tensorboard_dir
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

settings = dict(snakemake.params.settings)
model = getattr(snakemake.input, "base", None) or settings["model"]
events = tensorboard_dir(snakemake.config.get("tensorboard", False), snakemake.log)

run(
    snakemake,
    lambda device: finetune(
        str(model), Path(snakemake.input.train).parent, snakemake.wildcards.task, settings,
        RunFiles(Path(snakemake.output.model), Path(snakemake.output.curve), Path(snakemake.output.metrics)),
        snakemake.params.state, device, callbacks=tensorboard(events),
    ),
)
