"""Analysing: statistics, significance tests, capacity at SLO, SLO gates (pure, no plotting)."""
