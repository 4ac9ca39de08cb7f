"""Abandoned calls become callback items: a person to call back, not a statistic."""
