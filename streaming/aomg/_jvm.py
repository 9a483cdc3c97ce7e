"""The py4j boundary of AOMG's SQL functions: register them on a session, read JVM errors.

Why a module of its own: ``streaming`` must not import ``blaze`` (whose ``_jvm`` module holds
the manager's py4j calls), and every ``_jvm`` chain of the project lives in a named adapter
(tests/unit/test_layering.py). This one makes three calls: does the driver see the jar's
``AomgFunctions`` class, which summary format it writes, and register the functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from blaze_errors import ConfigError, InputError

__all__ = ["FUNCTIONS_CLASS", "aomg_message", "jvm_errors", "register_on"]

FUNCTIONS_CLASS = "org.blazespark.aomg.AomgFunctions"
EXCEPTION_CLASS = "org.blazespark.aomg.AomgException"


def register_on(spark, expected_version: int, how_to_start: str) -> None:
    """Register the functions on ``spark``; :class:`ConfigError` (one line) if its JVM lacks
    the jar or has a jar of another summary format."""
    from py4j.java_gateway import JavaClass

    functions = spark.sparkContext._jvm.org.blazespark.aomg.AomgFunctions
    # py4j resolves a class it cannot load as a package
    if not isinstance(functions, JavaClass):
        raise ConfigError(
            f"this Spark session cannot load AOMG's SQL functions ({FUNCTIONS_CLASS}): "
            f"{how_to_start}"
        )
    version = int(functions.formatVersion())
    if version != expected_version:
        raise ConfigError(
            f"this Spark session's blaze-spark jar writes AOMG summary format {version}, "
            f"Python reads {expected_version}: {how_to_start}"
        )
    functions.register(spark._jsparkSession)


def aomg_message(exc: BaseException) -> str | None:
    """The message of the first ``AomgException`` in a PySpark/py4j error's Java causes."""
    from py4j.java_gateway import is_instance_of
    from pyspark.core.context import SparkContext

    throwable = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    gateway = SparkContext._gateway
    seen = 0
    while throwable is not None and gateway is not None and seen < 32:
        if is_instance_of(gateway, throwable, EXCEPTION_CLASS):
            return str(throwable.getMessage())
        throwable = throwable.getCause()
        seen += 1
    return None


@contextmanager
def jvm_errors() -> Iterator[None]:
    """Re-raise an error caused by an ``AomgException`` as :class:`InputError` with its one
    line (bad arguments at analysis, a summary of another version or config in a job)."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    try:
        yield
    except (PySparkException, Py4JJavaError) as exc:
        message = aomg_message(exc)
        if message is None:
            raise
        raise InputError(message) from None
