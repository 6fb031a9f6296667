"""Build one student's embed. baseline (its token-embedding table before training):
`kdprobe.distil.build_embed_model` (rule `embed_model`).

Expects `wildcards.student`; `input.transfer` (transfer-set parquet files), `input.dev` (with `labels.txt` beside
it), `input.teacher` (the fine-tuned teacher directory), optional `input.word2vec`; `params.settings` (the task's
`students.<student>` section); writes the directory `output[0]`.
"""

from pathlib import Path

from kdprobe.distil import build_embed_model
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

word2vec = getattr(snakemake.input, "word2vec", None)

run(
    snakemake,
    lambda device: build_embed_model(
        snakemake.wildcards.student, dict(snakemake.params.settings), [str(p) for p in snakemake.input.transfer],
        Path(snakemake.input.dev).parent, str(snakemake.input.teacher), str(snakemake.output[0]),
        word2vec=str(word2vec) if word2vec else None,
    ),
)
