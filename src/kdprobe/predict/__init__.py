"""Stage `predict` (workflow/rules/predict.smk): run a trained model on a split's sentences. `predictions`: dev and
test predictions with every class probability (rules `predict`, `predict_test`); `speed`: size and measured latency
and throughput (rule `speed`)."""
