"""Plots of a finished run, with matplotlib's Agg backend: every function builds and returns a `Figure` (so tests
can inspect its axes) and `common.save_figure` writes it as PNG, atomically. `predictions`: confidence
histograms, reliability diagrams, agreement matrices; `probing`: probe accuracy by normalised layer depth;
`curves`: training curves of the teacher, GPT-2 and the students."""
