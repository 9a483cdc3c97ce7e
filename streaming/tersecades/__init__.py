"""streaming/tersecades."""
