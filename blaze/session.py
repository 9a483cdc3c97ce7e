"""Start a local SparkSession with the project's defaults.

Why a helper and not a bare ``SparkSession.builder``: Spark must find Java 17+, Python
workers must run *this* interpreter (the one with blaze-spark installed, not whatever
``python3`` is first on PATH), and ``spark.blaze.*`` confs are validated before the JVM
starts so a typo fails in one line instead of after a 10-second JVM start.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from blaze.config import BlazeConfig, default_spark_conf
from blaze.java import check_java
from blaze.plugin import wants_plugin, with_blaze_plugin

__all__ = ["session", "spark_conf"]


def spark_conf(
    conf: Mapping[str, str] | None = None, *, app_name: str = "blaze-spark"
) -> dict[str, str]:
    """The merged Spark conf a session would get: project defaults, then ``conf``.

    Validates the ``spark.blaze.*`` part (raises :class:`blaze.errors.ConfigError`).
    """
    merged = default_spark_conf()
    merged["spark.app.name"] = app_name
    merged["spark.pyspark.python"] = sys.executable
    merged["spark.pyspark.driver.python"] = sys.executable
    for key, value in (conf or {}).items():
        merged[key] = str(value)
    BlazeConfig.from_conf(merged)
    return merged


def session(
    conf: Mapping[str, str] | None = None,
    *,
    app_name: str = "blaze-spark",
    master: str | None = None,
):
    """Return a SparkSession built from ``conf/blaze.conf`` defaults plus ``conf``.

    ``master`` is a shortcut for ``conf["spark.master"]``. Any ``spark.blaze.*`` key loads
    blaze-spark's JVM plugin (:mod:`blaze.plugin`); if ``spark.blaze.enabled`` is true the
    Blaze manager is attached before the session is returned.
    """
    merged = spark_conf(conf, app_name=app_name)
    if master is not None:
        merged["spark.master"] = master
    check_java()
    if wants_plugin(merged):
        # before the JVM starts: spark.jars then also reaches the driver's class path
        merged = with_blaze_plugin(merged)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in merged.items():
        if key == "spark.master":
            builder = builder.master(value)
        elif value != "":
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if BlazeConfig.from_conf(merged).enabled:
        # the startup hook normally did this already; attach here if it is not installed
        # (raising, not exiting: this is the Python API)
        from blaze.manager import active_manager, attach

        if active_manager(spark) is None:
            attach(spark)
    return spark
