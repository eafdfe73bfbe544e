"""Retention: what the policy lets go, what it must keep, and the passes that delete it."""
