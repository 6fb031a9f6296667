"""Generate one shard of a rule-based or random-word transfer set: `kdprobe.augment.generate.generate_shard`.

Expects `wildcards.kind` (rules | random_words), `input.train` (the training split), `params.settings` (this
shard's, `kdconfig.generated_shard_settings`), `params.chunk_dir` (resumable chunks, not an output), and one output
parquet.
"""

from kdprobe.augment.generate import generate_shard
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

run(
    snakemake,
    lambda: generate_shard(
        snakemake.wildcards.kind, snakemake.input.train, dict(snakemake.params.settings), snakemake.output[0],
        snakemake.params.chunk_dir,
    ),
    device=False,
)
