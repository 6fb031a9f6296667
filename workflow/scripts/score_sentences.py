"""Hand-written sentences of one task scored by every trained model: `kdprobe.predict.score` (rule
`score_sentences`).

Expects `input.labels` (the task's `labels.txt`), one input per model (its directory, named by model,
`params.models` giving their order), `params.sentences` (the config's `analysis.score_sentences.<task>`),
`params.max_lengths` (each model's training token limit) and one output CSV.
"""

from pathlib import Path

from kdprobe.io import write_csv
from kdprobe.predict.score import score_sentences, sentence_entries
from kdprobe.splits import load_labels
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive


def main(device) -> None:
    task = snakemake.wildcards.task
    labels = load_labels(Path(snakemake.input.labels).parent)
    sentences = sentence_entries(list(snakemake.params.sentences), f"analysis.score_sentences.{task}", labels)
    models = {model: str(snakemake.input[model]) for model in snakemake.params.models}
    table = score_sentences(sentences, models, labels, dict(snakemake.params.max_lengths), device)
    write_csv(str(snakemake.output[0]), table)


run(snakemake, main)
