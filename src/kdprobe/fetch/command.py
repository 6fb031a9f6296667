"""The fetch rules' job and the fetch command line (workflow/scripts/fetch.py runs them).

The logic lives here, not in the script, so that changes to it do not make Snakemake's script-mtime trigger plan
the fetch jobs again for files that users placed or exported themselves (an output older than its rule's script
counts as out of date).
"""

import argparse
import logging
import sys

import yaml

from kdprobe.errors import KdprobeError
from kdprobe.fetch.fetcher import fetch_all, fetch_source
from kdprobe.fetch.spec import DEFAULT_CACHE_DIR, Source
from kdprobe.logs import configure_logging

USAGE = """Fetch the configured sources (all of them, or the KEYs given).

Command line, on any machine with internet (e.g. to prepare `resources/` for an air-gapped cluster):
    python workflow/scripts/fetch.py [--config config/config.yaml] [--cache-dir resources/downloads]
                                     [--force] [KEY ...]
"""


def from_snakemake(smk) -> None:
    """Fetch the one source of a `fetch_<key>` job (`smk`: Snakemake's `snakemake` object), logging to its log."""
    with open(smk.log[0], "w", encoding="utf-8") as log_fh:
        sys.stderr = log_fh
        configure_logging()
        p = smk.params
        outputs = list(smk.output)
        src = Source(
            key=p.key,
            section=p.section,
            url=p.url,
            path=p.path,
            repo=p.repo,
            revision=p.revision,
            sha256=p.sha256,
            git_blob=p.git_blob,
            output=None if p.extract else outputs[0],
            extract=dict(p.extract) if p.extract else None,
        )
        logging.getLogger("kdprobe.fetch").info("fetching %s from %s", src.key, src.origin)
        fetch_source(src, p.cache_dir)


def main(argv: list[str] | None = None) -> int:
    """The command line: fetch the sources of a config (all, or the keys given); 1 on a clear error."""
    parser = argparse.ArgumentParser(description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("keys", nargs="*", help="source keys to fetch (default: all)")
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR)
    parser.add_argument("--force", action="store_true", help="fetch even when the outputs exist")
    args = parser.parse_args(argv)
    configure_logging()
    with open(args.config, encoding="utf-8") as fh:
        config = yaml.safe_load(fh) or {}
    try:
        fetch_all(config.get("sources"), args.keys or None, args.cache_dir, force=args.force)
    except KdprobeError as err:
        logging.getLogger("kdprobe.fetch").error("%s", err)
        return 1
    return 0

