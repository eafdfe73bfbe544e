"""marketsense.cli."""
