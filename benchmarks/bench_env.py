"""What every benchmark script sets up before it imports torch, transformers or kdprobe: Hugging Face offline,
`benchmarks/` and `src/` on the import path (the scripts run from a checkout, installed or not), and the run's clock
(`STARTED`: the log's elapsed time and `gpu_check.py`'s budget count from here, imports included)."""

import os
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (HERE, ROOT / "src"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
