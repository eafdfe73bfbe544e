"""Run the ingestion service: `python -m marketsense.ingestion`."""

from marketsense.common.serve import serve

serve("ingestion")
