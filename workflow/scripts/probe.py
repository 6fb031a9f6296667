"""Probe one model on every SentEval task: `kdprobe.probe.run.probe_tasks` (rule `probe`).

Reads `params.kind` (teacher | pretrained | bert_s | lstm_s | embed), `params.name` (the tables' model column),
`params.model_path` (model directory, or a hub id for the pre-trained teacher), `input.data` (the SentEval
`{probe_task}.txt` files, in the config's order), `params.settings` ({probing task: its settings},
`kdprobe.config.probe_settings`), `params.state` (the directory of the per-task saved tables); writes `output.tables` (one per task, in the same order) and `output.merged`.
"""

from kdprobe.probe.run import probe_tasks
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

run(
    snakemake,
    lambda device: probe_tasks(
        snakemake.params.kind,
        str(snakemake.params.model_path),
        [str(path) for path in snakemake.input.data],
        {name: dict(settings) for name, settings in snakemake.params.settings.items()},
        [str(path) for path in snakemake.output.tables],
        str(snakemake.output.merged),
        str(snakemake.params.state),
        device,
        name=str(snakemake.params.name),
    ),
)
