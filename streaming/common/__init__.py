"""The telemetry every streaming operator reads: a seeded generator and a Spark source for it."""
