"""Name the JVM module in a Spark conf: the jar on ``spark.jars``, the plugin on ``spark.plugins``.

Why append and never overwrite: both keys are comma-separated lists that users fill too
(their own jars, other plugins such as a profiler); replacing them would silently unload
those. Why both: ``spark.jars`` ships the jar to every executor (and, set before the driver's
JVM starts, puts it on the driver's class path); ``spark.plugins`` makes Spark start
:java:`org.blazespark.BlazePlugin`'s driver and executor halves. Both must be in the conf
before the SparkContext starts; Spark reads them once.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from blaze_jvm.build import jar_path

__all__ = ["JARS_KEY", "PLUGINS_KEY", "PLUGIN_CLASS", "appended", "with_plugin"]

PLUGIN_CLASS = "org.blazespark.BlazePlugin"
JARS_KEY = "spark.jars"
PLUGINS_KEY = "spark.plugins"


def appended(current: str | None, item: str) -> str:
    """``current`` (a comma-separated list) with ``item`` added at the end unless present."""
    items = [part.strip() for part in (current or "").split(",") if part.strip()]
    if item not in items:
        items.append(item)
    return ",".join(items)


def with_plugin(conf: Any, jar: Path | str | None = None) -> Any:
    """Add the jar to ``spark.jars`` and the plugin to ``spark.plugins`` of ``conf``.

    ``conf`` is a mapping (a new ``dict`` is returned, the argument is left alone), a
    ``pyspark.SparkConf`` or a ``SparkSession.builder`` (both changed in place and returned).
    ``jar`` defaults to :func:`blaze_jvm.jar_path` (built on first use).
    """
    location = str(jar if jar is not None else jar_path())
    if isinstance(conf, Mapping):
        merged = dict(conf)
        merged[JARS_KEY] = appended(merged.get(JARS_KEY), location)
        merged[PLUGINS_KEY] = appended(merged.get(PLUGINS_KEY), PLUGIN_CLASS)
        return merged
    options = getattr(conf, "_options", None)  # SparkSession.Builder keeps its confs here
    if isinstance(options, Mapping):
        conf.config(JARS_KEY, appended(options.get(JARS_KEY), location))
        return conf.config(PLUGINS_KEY, appended(options.get(PLUGINS_KEY), PLUGIN_CLASS))
    if hasattr(conf, "get") and hasattr(conf, "set"):  # pyspark.SparkConf
        conf.set(JARS_KEY, appended(conf.get(JARS_KEY), location))
        return conf.set(PLUGINS_KEY, appended(conf.get(PLUGINS_KEY), PLUGIN_CLASS))
    raise TypeError(
        f"with_plugin: conf must be a mapping, a SparkConf or a SparkSession builder, not {type(conf).__name__}"
    )
