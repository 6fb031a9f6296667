"""Build one student untrained, for a probing baseline (rules `embed_model` and `random_student`, by `rule`):
`kdprobe.distil.build_embed_model` (the embed. baseline: its token-embedding table before training) or
`kdprobe.distil.build_random_model` (the random encoder: every weight random, the student's vocabulary and
embedding setup).

Expects `wildcards.student`; `input.transfer` (transfer-set parquet files), `input.dev` (with `labels.txt` beside
it), `input.teacher` (the fine-tuned teacher directory: its tokenizer, and its wordpiece table), optional
`input.word2vec`; `params.settings` (the task's `students.<student>` section, seed included); writes the
directory `output[0]`.
"""

from pathlib import Path

from kdprobe.distil import build_embed_model, build_random_model
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

BUILDERS = {"embed_model": build_embed_model, "random_student": build_random_model}
build = BUILDERS[snakemake.rule]
word2vec = getattr(snakemake.input, "word2vec", None)

run(
    snakemake,
    lambda device: build(
        snakemake.wildcards.student, dict(snakemake.params.settings), [str(p) for p in snakemake.input.transfer],
        Path(snakemake.input.dev).parent, str(snakemake.input.teacher), str(snakemake.output[0]),
        word2vec=str(word2vec) if word2vec else None,
    ),
)
