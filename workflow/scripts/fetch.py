"""Fetch one configured source (Snakemake `script:` of the fetch_<key> rules), or all of them from a shell.

Command line, on any machine with internet (e.g. to prepare `resources/` for an air-gapped cluster):
    python workflow/scripts/fetch.py [--config config/config.yaml] [--cache-dir resources/downloads]
                                     [--force] [KEY ...]

Kept this short on purpose: `kdprobe.fetch.command` does the work (see there why).
"""

import sys

from kdprobe.fetch.command import from_snakemake, main

if "snakemake" in globals():
    from_snakemake(snakemake)  # noqa: F821 (injected by Snakemake)
elif __name__ == "__main__":
    sys.exit(main())
