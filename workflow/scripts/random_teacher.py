"""Build the random teacher (the pre-trained teacher's architecture and tokenizer, every weight random):
`kdprobe.random_models.build_random_teacher` (rule `random_teacher`).

Expects optional `input.base` (a local model directory; else `params.model`, a hub id), `params.seed`; writes the
model directory `output[0]`.
"""

from kdprobe.random_models import build_random_teacher
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

model = getattr(snakemake.input, "base", None) or snakemake.params.model

run(snakemake, lambda device: build_random_teacher(str(model), str(snakemake.output[0]), int(snakemake.params.seed)))
