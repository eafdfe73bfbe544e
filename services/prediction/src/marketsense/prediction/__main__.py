"""Run the prediction service: `python -m marketsense.prediction`."""

from marketsense.common.serve import serve

serve("prediction")
