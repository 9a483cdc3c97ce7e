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

__all__ = ["JvmLog", "SparkLogHandler", "install"]

_LEVELS = (
    (logging.ERROR, "error"),
    (logging.WARNING, "warn"),
    (logging.INFO, "info"),
    (logging.DEBUG, "debug"),
)


class JvmLog:
    """One log4j logger of the driver JVM (Spark's own logging), by name.

    Why log4j and not Python's stderr: under ``spark-submit`` the Python driver's stderr is
    merged into the program's stdout, so anything printed there changes the program's output;
    log4j lines go wherever Spark's own lines go (its console appender on the JVM's stderr,
    or the files a cluster's log4j2.properties names) and obey ``sc.setLogLevel``.
    """

    LEVELS = ("trace", "debug", "info", "warn", "error", "fatal")

    def __init__(self, logger) -> None:
        self._logger = logger  # the py4j handle of a log4j Logger (JvmBridge.log4j)

    def write(self, level: str, message: str) -> None:
        """``level`` one of :attr:`LEVELS`; raises py4j errors when the JVM is gone."""
        if level not in self.LEVELS:
            raise ValueError(f"log4j level must be one of {self.LEVELS}, got {level!r}")
        getattr(self._logger, level)(message)

    def enabled(self, level: str) -> bool:
        """Whether log4j would print ``level`` (skip formatting and the call otherwise)."""
        return bool(getattr(self._logger, f"is{level.capitalize()}Enabled")())


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
