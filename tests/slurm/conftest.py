"""Tests under tests/slurm/ get the session-scoped `slurm_cluster` fixture (see kdprobe_slurm.py) without imports."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kdprobe_slurm import slurm_cluster  # noqa: E402,F401  (pytest fixture)
