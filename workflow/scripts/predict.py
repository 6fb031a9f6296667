"""Dev-set (or test-set) predictions of one model on one task: `kdprobe.predict.predictions.write_predictions`.

Expects `wildcards.model` (teacher | bert_s | lstm_s; or `params.model_kind`), `input.model` (its directory),
`input.dev` (with `labels.txt` and `test.tsv` beside it), `params.max_length` (the token limit the model was trained
with), one output TSV; optional `params.batch_size` and `params.split` (dev, the default, or test).
"""

from pathlib import Path

from kdprobe.predict.predictions import write_predictions
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

kind = getattr(snakemake.params, "model_kind", None) or snakemake.wildcards.model
batch_size = int(getattr(snakemake.params, "batch_size", None) or 64)
split = getattr(snakemake.params, "split", None) or "dev"

run(
    snakemake,
    lambda device: write_predictions(
        kind, str(snakemake.input.model), Path(snakemake.input.dev).parent, str(snakemake.output[0]), device,
        batch_size=batch_size, max_length=int(snakemake.params.max_length), split=split,
    ),
)
