"""Fetch one configured source (Snakemake `script:` of the fetch_<key> rules), or all of them from a shell.

Command line, on any machine with internet (e.g. to prepare `resources/` for an air-gapped cluster):
    python workflow/scripts/fetch.py [--config config/config.yaml] [--cache-dir resources/downloads]
                                     [--force] [KEY ...]
"""

import argparse
import logging
import sys


def _from_snakemake(smk) -> None:
    from kdprobe.fetch import Source, fetch_source
    from kdprobe.logs import configure_logging

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
            output=None if p.extract else outputs[0],
            extract=dict(p.extract) if p.extract else None,
        )
        logging.getLogger("kdprobe.fetch").info("fetching %s from %s", src.key, src.origin)
        fetch_source(src, p.cache_dir)


def main(argv: list[str] | None = None) -> int:
    import yaml

    from kdprobe.errors import KdprobeError
    from kdprobe.fetch import DEFAULT_CACHE_DIR, fetch_all
    from kdprobe.logs import configure_logging

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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


if "snakemake" in globals():
    _from_snakemake(snakemake)  # noqa: F821 (injected by Snakemake)
elif __name__ == "__main__":
    sys.exit(main())
