"""Developer scripts called by the Makefile."""
