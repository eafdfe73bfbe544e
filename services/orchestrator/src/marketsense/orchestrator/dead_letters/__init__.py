"""Dead letters: every record the pipeline's consumers gave up on, indexed and replayable."""
