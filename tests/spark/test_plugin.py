"""blaze-spark's JVM plugin in the shared local session (both halves live in the driver JVM)."""

from __future__ import annotations

import pytest

from blaze_jvm import PLUGIN_CLASS

pytestmark = pytest.mark.spark


def test_the_local_executor_registered_with_the_driver_half(spark):
    from blaze.plugin import registered_executors

    conf = spark.sparkContext.getConf()
    assert PLUGIN_CLASS in conf.get("spark.plugins").split(",")
    assert any(j.endswith("blaze-spark-jvm.jar") for j in conf.get("spark.jars").split(","))
    assert registered_executors(spark) == ["driver"]
