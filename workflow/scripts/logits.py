"""Teacher logits for one part of the transfer set: `kdprobe.transfer.write_transfer`.

Expects `input.teacher` (model directory), `input.sentences` (a split TSV with labels, or an augmentation
parquet), `params.settings` (the task's `logits` section), `params.chunk_dir` (resumable chunks), and one
output parquet.
"""

from kdprobe.transfer import write_transfer

from kdprobe.splits import read_sentences
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive


def main(device):
    sentences, labels = read_sentences(snakemake.input.sentences)
    return write_transfer(
        snakemake.input.teacher, sentences, labels, dict(snakemake.params.settings), snakemake.output[0], device,
        chunk_dir=snakemake.params.chunk_dir,
    )


run(snakemake, main)
