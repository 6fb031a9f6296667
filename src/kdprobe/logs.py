"""What a job writes to its log: time-stamped log lines (`configure_logging`) and progress bars (`progress`).

Free of torch, so that jobs that only read tables and plot (and `kdprobe.workflow.run` itself) start without it.
"""

from __future__ import annotations

import logging
import sys
from typing import Iterable

from tqdm.auto import tqdm


def progress(iterable: Iterable | None = None, **kwargs) -> tqdm:
    """tqdm that writes to stderr (the rule's log), with rate and ETA, readable in a plain log file."""
    kwargs.setdefault("mininterval", 5.0 if not sys.stderr.isatty() else 0.1)
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", False)
    kwargs.setdefault("ascii", not sys.stderr.isatty())
    return tqdm(iterable, **kwargs)


def configure_logging(level: int = logging.INFO) -> None:
    """Log lines with time stamps to stderr (which a Snakemake rule points at its log file)."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logging.captureWarnings(True)
