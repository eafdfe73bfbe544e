"""marketsense.registry."""
