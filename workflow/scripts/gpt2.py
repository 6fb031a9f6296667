"""Fine-tune GPT-2 on one task's training sentences: `kdprobe.augment.gpt2.finetune`.

Expects `input.train`, optional `input.base` (a local model directory; else `params.settings["model"]`),
`params.settings` (the task's `gpt2` section), `params.state`, and outputs `model` (directory) and `curve`; with
`config["tensorboard"]`, TensorBoard events beside `log[0]`.
"""

from pathlib import Path

from kdprobe.augment.gpt2 import finetune
from kdprobe.training import RunFiles, tensorboard, tensorboard_dir
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

settings = dict(snakemake.params.settings)
model = getattr(snakemake.input, "base", None) or settings["model"]
events = tensorboard_dir(snakemake.config.get("tensorboard", False), snakemake.log)

run(
    snakemake,
    lambda device: finetune(
        str(model), snakemake.input.train, settings, RunFiles(Path(snakemake.output.model), Path(snakemake.output.curve)),
        snakemake.params.state, device, callbacks=tensorboard(events),
    ),
)
