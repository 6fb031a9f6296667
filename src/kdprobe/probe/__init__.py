"""Stage `probe` (workflow/rules/probe.smk, rule `probe`): layer-wise probing with the 10 SentEval probing tasks.

- `senteval`: read `data/probing/*.txt` (`split<TAB>label<TAB>sentence`).
- `encoders`: per-layer pooled sentence features, all layers in one forward pass per batch (models loaded by
  `kdprobe.models`).
- `classifier`: the SentEval MLP probe and the linear one, their grid (seeds and label sets side by side)
  and the majority baseline.
- `controls`: the control task of a probing task (Hewitt and Liang 2019), for selectivity.
- `mdl`: the online code of a probing task's labels (Voita and Titov 2020).
- `run`: `probe_tasks(...)` (one model x every probing task -> one table each, cached on content) and
  `probe_model(...)` (one model x one probing task).
- `tables`: `COLUMNS` of a probe table, its score columns over seeds (`seed_columns`), `read_probe_csv` and
  `merge_probes(...)`; torch-free.

The package imports none of them itself, so a job that only merges tables never imports torch.
"""
