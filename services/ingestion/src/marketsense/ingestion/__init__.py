"""marketsense.ingestion."""
