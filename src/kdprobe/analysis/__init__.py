"""Analysis of a finished run: dev-set predictions (`predictions`, `calibration`), probing results by normalised
layer depth (`probing`) and training curves (`curves`). Plots of them are in `kdprobe.plots`."""
