"""Presenting: the report and the release comparison, built from results files only."""
