"""Tasks: one per (run, symbol, stage); re-queued, timed out, cancelled with their run."""
