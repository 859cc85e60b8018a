"""Recording: HDR recorder, the versioned results file, HDR interval logs, run metadata."""
