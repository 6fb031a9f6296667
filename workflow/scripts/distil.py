"""Distil one student on one task: `kdprobe.distil.distil`.

Expects `wildcards.student` (bert_s | lstm_s) and `wildcards.task`; `input.transfer` (transfer-set parquet files),
`input.dev` (with `labels.txt` and `test.tsv` beside it), `input.teacher` (the fine-tuned teacher directory),
optional `input.word2vec`; `params.settings` (the task's `students.<student>` section), `params.state`; outputs
`model` (directory), `metrics`, `curve`; with `config["tensorboard"]`, TensorBoard events beside `log[0]`.
"""

from pathlib import Path

from kdprobe.distil import distil
from kdprobe.training import RunFiles, tensorboard, tensorboard_dir
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

word2vec = getattr(snakemake.input, "word2vec", None)
events = tensorboard_dir(snakemake.config.get("tensorboard", False), snakemake.log)
out = snakemake.output

run(
    snakemake,
    lambda device: distil(
        snakemake.wildcards.student, snakemake.wildcards.task, dict(snakemake.params.settings),
        [str(p) for p in snakemake.input.transfer], Path(snakemake.input.dev).parent, str(snakemake.input.teacher),
        RunFiles(Path(out.model), Path(out.curve), Path(out.metrics)), str(snakemake.params.state), device,
        word2vec=str(word2vec) if word2vec else None, callbacks=tensorboard(events),
    ),
)
