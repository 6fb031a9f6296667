"""One ablation's probing deltas on one task: `kdprobe.report.ablations.write_probe_deltas` (rule
`ablation_probe_summary`).

Expects `wildcards.task`, `wildcards.ablation`; `input.probes` (each run's merged probe table, in the order of
`params.runs`: [{point, labels, seed}]), `params.reference` (the reference point's label); writes `output[0]` (CSV).
"""

from pathlib import Path

from kdprobe.report.ablations import ProbedRun, write_probe_deltas
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

run(
    snakemake,
    lambda: write_probe_deltas(
        snakemake.wildcards.task, snakemake.wildcards.ablation,
        [ProbedRun(point["point"], int(point["seed"]), Path(probe))
         for point, probe in zip(snakemake.params.runs, snakemake.input.probes, strict=True)],
        snakemake.params.reference, snakemake.output[0],
    ),
    device=False,
)
