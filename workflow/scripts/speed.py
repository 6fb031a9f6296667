"""Size and speed of one model on one task, measured on this job's machine: `kdprobe.predict.speed.measure_model`.

Expects `wildcards.model` (teacher | bert_s | lstm_s), `input.model` (its directory), `input.dev` (with
`labels.txt` beside it), `params.max_length` (the token limit the model was trained with), `params.settings` (the
config's `summary` timing keys); writes `output[0]` (JSON). The CPU is timed with the job's threads; the GPU too
when the job was given one (`resources.gpu`).
"""

from pathlib import Path

from kdprobe.predict.speed import measure_model
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

run(
    snakemake,
    lambda device: measure_model(
        snakemake.wildcards.model, str(snakemake.input.model), Path(snakemake.input.dev).parent,
        str(snakemake.output[0]), device, dict(snakemake.params.settings),
        max_length=int(snakemake.params.max_length),
    ),
)
