"""Layer-wise probing with the 10 SentEval probing tasks.

- `senteval`: read `data/probing/*.txt` (`split<TAB>label<TAB>sentence`).
- `encoders`: per-layer pooled sentence features, all layers in one forward pass per batch.
- `probe`: the SentEval MLP probe, its grid and the majority baseline.
- `run`: `probe_model(...)` (one model x one probing task -> CSV) and `merge_probes(...)`.
"""

from .run import COLUMNS, merge_probes, probe_model

__all__ = ["COLUMNS", "merge_probes", "probe_model"]
