"""Run the processing service: `python -m marketsense.processing`."""

from marketsense.common.serve import serve

serve("processing")
