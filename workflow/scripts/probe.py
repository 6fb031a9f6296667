"""Probe one model on one SentEval task: `kdprobe.probing.run.probe_model` (rule `probe`).

Reads `params.kind` (teacher | pretrained | bert_s | lstm_s), `params.model_path` (model directory, or a hub id
for the pre-trained teacher), `input.data` (the SentEval `{probe_task}.txt`), `params.settings` (the probe
settings of this kind and probing task: `kdprobe.config.probe_settings`); writes `output[0]`.
"""

from kdprobe.probing.run import probe_model
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

run(
    snakemake,
    lambda device: probe_model(
        snakemake.params.kind,
        str(snakemake.params.model_path),
        str(snakemake.input.data),
        dict(snakemake.params.settings),
        str(snakemake.output[0]),
        device,
    ),
)
