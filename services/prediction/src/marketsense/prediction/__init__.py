"""marketsense.prediction."""
