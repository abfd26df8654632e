"""Rasa NLU components of the assistant (referenced by module path from config.yml)."""
