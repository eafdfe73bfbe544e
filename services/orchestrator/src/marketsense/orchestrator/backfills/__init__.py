"""Backfills: one run over a range of trading days."""
