"""Run the retraining worker: `python -m marketsense.retraining`."""

from marketsense.common.serve import serve

serve("retraining")
