"""Route the stdlib logger ``blaze`` into Spark's log4j (logger ``blaze``) while attached.

Why: the manager must add nothing to a program's output. Records go to the driver JVM's
log4j through one py4j call each (the manager logs a handful of lines per run, plus debug
lines only when asked), so they sit with Spark's own log lines, follow ``sc.setLogLevel`` and
the cluster's log4j configuration, and never reach the Python driver's stdout or stderr.
When the JVM is already gone (a report logged while the interpreter exits after Spark), a
WARNING or worse record falls back to stderr; anything milder is dropped.
"""

from __future__ import annotations

import logging
import sys

from blaze._jvm import JvmLog

__all__ = ["SparkLogHandler", "install"]

_LEVELS = (
    (logging.ERROR, "error"),
    (logging.WARNING, "warn"),
    (logging.INFO, "info"),
    (logging.DEBUG, "debug"),
)


def log4j_level(levelno: int) -> str:
    """The log4j level of a stdlib level number (CRITICAL -> error, NOTSET -> trace)."""
    for threshold, name in _LEVELS:
        if levelno >= threshold:
            return name
    return "trace"


class SparkLogHandler(logging.Handler):
    """A logging handler that writes each record to one log4j logger of the driver JVM."""

    def __init__(self, jvm_log: JvmLog) -> None:
        super().__init__()
        self._jvm_log = jvm_log
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
        except Exception:
            self.handleError(record)
            return
        try:
            self._jvm_log.write(log4j_level(record.levelno), message)
        except Exception:  # the gateway is gone: keep warnings, drop chatter
            if record.levelno >= logging.WARNING:
                sys.stderr.write(message + "\n")


def install(logger: logging.Logger, jvm_log: JvmLog, level: str | int) -> SparkLogHandler:
    """Make ``logger`` write only to ``jvm_log`` (replacing its handlers).

    Idempotent per JVM: a second attach in the same process swaps the handler, so records
    are never written twice.
    """
    handler = SparkLogHandler(jvm_log)
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False  # the root logger's handlers may print to stderr
    return handler
