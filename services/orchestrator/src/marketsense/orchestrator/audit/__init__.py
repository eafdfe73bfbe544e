"""The operator audit log: who started, retried, cancelled or replayed what, and why."""
