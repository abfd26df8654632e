"""The HTTP API of the consent service."""
