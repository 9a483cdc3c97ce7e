"""Load blaze-spark's JVM plugin into a SparkContext about to start, and read its driver half.

Why here and not in ``blaze_jvm``: loading needs the running JVM (py4j, kept in
``blaze/_plugin_jvm.py``) and the rule for *when* to load is the manager's — any ``spark.blaze.*``
key in the conf, flag on or off, so the plugin is in place whichever way the program
attaches the manager later (``spark.plugins`` is read once, at context start). The startup
hook and :func:`blaze.session` both go through :func:`with_blaze_plugin`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from blaze._plugin_jvm import PluginMailbox, add_jar_to_running_driver
from blaze.config import PREFIX
from blaze_errors import ConfigError
from blaze_jvm import PLUGIN_CLASS, jar_path, with_plugin

__all__ = ["registered_executors", "wants_plugin", "with_blaze_plugin"]


def wants_plugin(keys: Iterable[str]) -> bool:
    """Whether a conf with these keys gets the plugin: any ``spark.blaze.*`` key does."""
    return any(key.startswith(PREFIX) for key in keys)


def with_blaze_plugin(conf: Any) -> Any:
    """``conf`` (mapping, SparkConf or builder; see :func:`blaze_jvm.with_plugin`) naming the
    jar and the plugin, with the jar loadable by a driver JVM that is already running.

    Builds the jar on first use; raises :class:`~blaze_errors.JavaError` (one line) without a JDK.
    """
    jar = jar_path()
    conf = with_plugin(conf, jar)
    add_jar_to_running_driver(str(jar), PLUGIN_CLASS)
    return conf


def registered_executors(spark) -> list[str]:
    """Executor ids whose plugin half registered with the driver half of ``spark`` (a
    SparkSession or SparkContext), sorted; ``"driver"`` is the executor of local mode."""
    mailbox = PluginMailbox(getattr(spark, "sparkContext", spark))
    if not mailbox.active:  # the classes may be loadable with no running driver half
        raise ConfigError(
            "the blaze-spark plugin is not loaded in this Spark application: start it with "
            "blaze.session(...) or with any spark.blaze.* conf set"
        )
    return sorted(mailbox.registered())
