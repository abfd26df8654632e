"""Masking personal details at intake (issue 19): the generated set and its measurement."""
