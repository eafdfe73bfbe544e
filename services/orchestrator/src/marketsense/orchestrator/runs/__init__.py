"""Runs: one per trading day over a universe, started, settled, retried and cancelled."""
