"""Sample one augmentation shard from the fine-tuned GPT-2: `kdprobe.augment.sample.sample_shard`.

Expects `input.model`, `params.settings` (the `augment` sampling settings plus this shard's `sentences` and
`seed`), `params.chunk_dir` (resumable chunks, not an output), and one output parquet.
"""

from kdprobe.augment.sample import sample_shard
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

settings = dict(snakemake.params.settings)

run(
    snakemake,
    lambda device: sample_shard(
        snakemake.input.model, int(settings["sentences"]), int(settings["seed"]), settings,
        snakemake.output[0], snakemake.params.chunk_dir, device,
    ),
)
