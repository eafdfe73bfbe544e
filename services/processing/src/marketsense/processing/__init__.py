"""marketsense.processing."""
