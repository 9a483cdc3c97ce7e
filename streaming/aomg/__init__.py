"""streaming/aomg."""
