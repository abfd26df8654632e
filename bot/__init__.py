"""The assistant's own Python beyond custom actions: settings, channels, NLU helpers."""
