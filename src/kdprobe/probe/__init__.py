"""Stage `probe` (workflow/rules/probe.smk, rule `probe`): layer-wise probing with the 10 SentEval probing tasks.

- `senteval`: read `data/probing/*.txt` (`split<TAB>label<TAB>sentence`).
- `encoders`: per-layer pooled sentence features, all layers in one forward pass per batch (models loaded by
  `kdprobe.models`).
- `classifier`: the SentEval MLP probe, its grid and the majority baseline.
- `run`: `probe_tasks(...)` (one model x every probing task -> one table each, cached on content) and
  `probe_model(...)` (one model x one probing task).
- `tables`: `COLUMNS` of a probe table and `merge_probes(...)`; torch-free.

The package imports none of them itself, so a job that only merges tables never imports torch.
"""
