"""Operators: who they are (config/operators.toml), where they answer, and whether they are in."""
