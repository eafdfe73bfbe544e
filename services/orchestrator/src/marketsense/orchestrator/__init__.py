"""marketsense.orchestrator."""
