"""streaming/jarvis."""
