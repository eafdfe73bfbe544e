"""marketsense.modelkit: build, export and check models (needs torch)."""
