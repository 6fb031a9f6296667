"""Normalise one task's raw data: `kdprobe.data.prepare.prepare_task`.

Expects `wildcards.task`, `params.source` (the task's `tasks.<task>.data` section) and outputs `train`, `dev`,
`test`, `labels`, all in one directory.
"""

from pathlib import Path

from kdprobe.data.prepare import prepare_task
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

run(
    snakemake,
    lambda: prepare_task(
        snakemake.wildcards.task, dict(snakemake.params.source), Path(snakemake.output.train).parent
    ),
    device=False,
)
