"""Run the monitoring service: `python -m marketsense.monitoring`."""

from marketsense.common.serve import serve

serve("monitoring")
