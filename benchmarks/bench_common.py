"""What `run.py` and `gpu_check.py` share: the log, medians and paired ratios, the thesis config, a run's stamp (date,
command, software) and the Markdown pieces of its page. Each script measures into a dict that it saves as JSON and
renders its page from that dict alone."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Iterable, Sequence

import torch
import transformers
import yaml

from bench_env import ROOT, STARTED
from kdprobe.registry import STUDENT
from kdprobe.settings import LossSettings, OptimizerSettings, TrainSettings


def config(name: str) -> dict:
    """`config/<name>.yaml`."""
    return yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())


THESIS = config("config")


# ------------------------------------------------------------------------------------------------ measuring
def log(msg: str) -> None:
    """`msg` on stderr, with the time of day and the seconds since the run started."""
    print(f"[{time.strftime('%H:%M:%S')} +{time.perf_counter() - STARTED:5.0f} s] {msg}", file=sys.stderr,
          flush=True)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, for the record of what else ran beside a benchmark."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def median(xs) -> float:
    return float(statistics.median(xs))


def paired_ratio(ours: Sequence[dict], theirs: Sequence[dict], unit: str) -> float | None:
    """Median over rounds of our `unit`/s over theirs (each pair ran one after the other); None if a side has no
    runs."""
    if not ours or not theirs:
        return None
    return median([(x[unit] / x["s"]) / (y[unit] / y["s"]) for x, y in zip(ours, theirs)])


def thesis_student(kind: str, **overrides) -> dict:
    """A student's section of config/config.yaml with `overrides`; LSTM_S on random word vectors (word2vec's shape
    without the GoogleNews file)."""
    settings = {**THESIS["students"][kind], **overrides}
    if kind == "lstm_s":
        settings["embeddings"] = "random"
    return settings


def typed_student(kind: str, settings: dict) -> tuple[LossSettings, OptimizerSettings, TrainSettings]:
    """The loss, optimiser and training-loop settings of a student's section, typed as `distil` types them."""
    section = f"students.{kind}"
    return (LossSettings.from_section(settings, section, STUDENT[kind].default_loss),
            OptimizerSettings.from_section(settings, section), TrainSettings.from_section(settings, section))


def now() -> str:
    return dt.datetime.now().strftime("%Y-%m-%d %H:%M")


def command_line(script: str, argv: Sequence[str]) -> str:
    """The command a page says it was run by (absolute paths in it as `shown` names them)."""
    return " ".join([".venv/bin/python", f"benchmarks/{script}", *(shown(a) if a.startswith("/") else a for a in argv)])


#: How a page names a directory outside the checkout (a page names no path of the machine it was made on).
ELSEWHERE = "<elsewhere>"


def shown(path: str | Path) -> str:
    """`path` as a page names it: relative to the checkout when inside it, else `<elsewhere>/<its name>`."""
    full = Path(path).resolve()
    return str(full.relative_to(ROOT)) if full.is_relative_to(ROOT) else f"{ELSEWHERE}/{full.name}"


def software() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}


# ---------------------------------------------------------------------------------------------------- pages
def fmt(x: float | None, digits: int = 3) -> str:
    """A number for a page: thousands separated from 100 on, else `digits` significant digits; n/a for none."""
    if x is None or x != x:
        return "n/a"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.{digits}g}"


def cell(text: str) -> str:
    """Text for a markdown table cell (`|x|` would end the cell)."""
    return text.replace("|", "\\|")


def md_row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def md_table(header: Sequence[str], rows: Iterable[str]) -> list[str]:
    """A markdown table's lines: `header`, the separator, then `rows` (each made by `md_row`)."""
    return [md_row(*header), md_row(*["---"] * len(header)), *rows]


def software_line(m: dict) -> str:
    """The page's line of `software()`'s versions."""
    return f"- Python {m['python']}, torch {m['torch']}, transformers {m['transformers']}"
