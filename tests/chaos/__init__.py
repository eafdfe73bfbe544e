"""Fault tests: the pipeline as real processes, with crashes and outages injected."""
