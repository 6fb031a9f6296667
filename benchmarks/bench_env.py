"""What every benchmark script sets up before it imports torch, transformers or kdprobe: Hugging Face offline, and
`benchmarks/` and `src/` on the import path (the scripts run from a checkout, installed or not)."""

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (HERE, ROOT / "src"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
