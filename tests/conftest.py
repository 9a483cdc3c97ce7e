"""Shared fixtures: one real local SparkSession for the whole run (never a mock).

Starting a JVM costs 10-20 s on this machine, so every Spark test shares one session; tests
that need a different SparkContext configuration (squeezed storage memory, several
executors, spark-submit) start their own process instead of mutating this one.
"""

from __future__ import annotations

import os
import sys

import pytest

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

TEST_SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.driver.memory": "2g",
    "spark.sql.streaming.stateStore.providerClass": (
        "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
    ),
    "spark.sql.streaming.forceDeleteTempCheckpointLocation": "true",
    "spark.python.worker.reuse": "true",
}


@pytest.fixture(scope="session")
def spark():
    """The session-wide local SparkSession (built through the project's own bootstrap)."""
    import blaze

    session = blaze.session(TEST_SPARK_CONF, app_name="blaze-spark-tests")
    yield session
    for query in session.streams.active:
        query.stop()
    session.stop()


@pytest.fixture(scope="session")
def sc(spark):
    return spark.sparkContext


@pytest.fixture
def stop_streams(spark):
    """Stop any streaming query a test leaves running, even when it fails."""
    yield
    for query in spark.streams.active:
        query.stop()
