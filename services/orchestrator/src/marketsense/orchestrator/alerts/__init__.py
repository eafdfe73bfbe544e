"""What the orchestrator tells on-call people: runs that ended badly, stuck runs, dead letters."""
