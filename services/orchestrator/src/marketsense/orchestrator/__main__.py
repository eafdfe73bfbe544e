"""Run the orchestrator service: `python -m marketsense.orchestrator`."""

from marketsense.common.serve import serve

serve("orchestrator")
