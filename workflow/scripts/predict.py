"""Dev-set (or test-set) predictions of one model on one task: `kdprobe.predict.predictions.write_predictions`
(rules `predict`, `predict_test`, `predict_variant`, `predict_test_variant`).

Expects `wildcards.model` (the model kind: teacher | bert_s | lstm_s), `input.model` (its directory), `input.dev`
(with `labels.txt` and `test.tsv` beside it), `params.max_length` (the token limit the model was trained with) and
one output TSV; `params.split` is `test` in the `*test*` rules and absent (dev) in the others. Batches hold
`write_predictions`' default of 64 sentences (no config key sets it).
"""

from pathlib import Path

from kdprobe.predict.predictions import write_predictions
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

split = getattr(snakemake.params, "split", "dev")  # rule predict (and predict_variant) sets no split

run(
    snakemake,
    lambda device: write_predictions(
        snakemake.wildcards.model, str(snakemake.input.model), Path(snakemake.input.dev).parent,
        str(snakemake.output[0]), device, max_length=int(snakemake.params.max_length), split=split,
    ),
)
