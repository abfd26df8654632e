"""Custom actions of the assistant: one module per feature (rasa_sdk registers them all)."""
