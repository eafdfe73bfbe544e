"""marketsense.common."""
