"""Run the registry service: `python -m marketsense.registry`."""

from marketsense.common.serve import serve

serve("registry")
