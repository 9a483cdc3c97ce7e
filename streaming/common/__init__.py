"""streaming/common."""
