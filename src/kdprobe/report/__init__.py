"""The reporting wing: tables and figures of a finished run (stages `analysis` and `summary`).

Tables: `predictions` and `calibration` (prediction analysis), `probing` (probe tables by layer depth),
`probing_stats` (intervals, paired tests, expected layers: the probing summary), `curves` (training curves), `scores`, `seeds`, `sweeps`, `cost` (the summary tables), `reproduction` (this run beside the
thesis's reported figures, `thesis_reported.csv`). Figures (matplotlib, `figures` for the shared look):
`prediction_plots`, `probing_plots`, `curve_plots`, `summary_plots`. Entry points of the rules:
`kdprobe.report.analysis.analyse` (rule `analyse_predictions`), `kdprobe.report.summary` (rules `summary_task`,
`summary_study`, `summary_cost`, `summary_reproduction`), `kdprobe.report.sweeps.write_sweep_summary` (rule
`sweep_summary`), `kdprobe.report.results_page` (the laptop run's Markdown page). Figures import tables, never the
other way round.
"""
