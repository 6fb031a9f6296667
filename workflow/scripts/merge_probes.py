"""Concatenate one model's per-task probe tables: `kdprobe.probing.run.merge_probes` (rule `merge_probes`).

Reads the per-task CSVs (`input`) and `params.probe_tasks` (the config's `probe.tasks`: every one must be
present, and they set the row order); writes `output[0]`.
"""

from kdprobe.probing.run import merge_probes
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

run(
    snakemake,
    lambda device: merge_probes(
        [str(path) for path in snakemake.input], str(snakemake.output[0]), list(snakemake.params.probe_tasks)
    ),
)
