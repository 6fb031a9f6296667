"""The transfer sets of one task side by side: `kdprobe.report.transfer_summary.transfer_summary`.

Expects `input.train` (the training split), `params.shards` ({kind: its augmentation shards}), `params.fractions`
({kind: the fractions its runs use}), and one output CSV.
"""

from kdprobe.io import write_csv
from kdprobe.report.transfer_summary import transfer_summary
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive


def main():
    table = transfer_summary(snakemake.input.train, dict(snakemake.params.shards), dict(snakemake.params.fractions))
    write_csv(snakemake.output[0], table)


run(snakemake, main, device=False)
