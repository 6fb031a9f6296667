"""Layer-wise probing with the 10 SentEval probing tasks.

- `senteval`: read `data/probing/*.txt` (`split<TAB>label<TAB>sentence`).
- `encoders`: per-layer pooled sentence features, all layers in one forward pass per batch.
- `probe`: the SentEval MLP probe, its grid and the majority baseline.
- `run`: `probe_model(...)` (one model x one probing task -> CSV).
- `tables`: `COLUMNS` of a probe table and `merge_probes(...)` (also in `run`); torch-free.

The package imports none of them itself, so a job that only merges tables never imports torch.
"""
