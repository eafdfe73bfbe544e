"""marketsense.monitoring."""
