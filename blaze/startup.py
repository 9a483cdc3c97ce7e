"""What the opt-in startup hook calls: validate ``spark.blaze.*`` and attach the manager.

The hook itself (``blaze/_startup/blaze_spark_startup.py``, installed as a top-level module
with ``blaze-spark.pth``) stays tiny; everything else lives here.

Why a bad setting exits instead of raising: on this path the settings come from the command
line (``spark-submit --conf``, ``pyspark --conf``, spark-defaults), not from the program, so
a mistake is treated like a bad command-line option: one line on stderr naming the key, the
value and what is allowed, exit code 2, no traceback (a ConfigError raised from inside
``getOrCreate()`` ends in a 20-line traceback the user has to read from the bottom). A program
that calls :func:`blaze.attach` itself gets the :class:`ConfigError` to catch instead.

The line is printed through the JVM's ``System.err`` when the JVM is up: under
``spark-submit`` the Python driver's own stderr is merged into the program's stdout, while
the JVM's stderr is spark-submit's stderr (where Spark's own errors go).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from blaze_errors import BlazeError

__all__ = ["attach_at_startup", "fail_startup", "load_plugin_at_startup", "validate_at_startup"]

EXIT_BAD_CONF = 2


def fail_startup(message: str) -> None:
    """Print ``blaze: <message>`` once on stderr and end the program with exit code 2."""
    line = f"blaze: {message}"
    try:
        from blaze._jvm import print_to_jvm_stderr

        printed = print_to_jvm_stderr(line)
    except Exception:
        printed = False
    if not printed:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    raise SystemExit(EXIT_BAD_CONF)


def validate_at_startup(blaze_conf: Mapping[str, str]):
    """The validated :class:`~blaze.config.BlazeConfig` of ``blaze_conf``, or exit 2.

    Called whenever any ``spark.blaze.*`` key is present, flag on or off: a misspelt
    ``spark.blaze.enable=true`` must not quietly run the program without the manager.
    """
    from blaze.config import BlazeConfig

    try:
        return BlazeConfig.from_conf(blaze_conf)
    except BlazeError as exc:
        fail_startup(str(exc))
    return None  # unreachable: fail_startup raises


def load_plugin_at_startup(conf):
    """The conf a starting SparkContext gets, naming blaze-spark's JVM plugin (or exit 2).

    ``conf`` is the SparkConf handed to ``_do_init``. Unless it already lives in the JVM it
    is laid over the JVM's system properties first, as ``_do_init`` itself would do: the
    lists are appended to, so ``spark-submit --jars``/``--conf spark.plugins`` survive. A
    missing JDK ends the program here, in one line, before Spark starts its context.
    """
    from pyspark.conf import SparkConf

    from blaze.plugin import with_blaze_plugin

    if conf is None or conf._jconf is None:
        in_jvm = SparkConf()  # the JVM is up: starts from its system properties
        for key, value in conf.getAll() if conf is not None else []:
            in_jvm.set(key, value)
        conf = in_jvm
    try:
        return with_blaze_plugin(conf)
    except BlazeError as exc:
        fail_startup(str(exc))
    return None  # unreachable: fail_startup raises


def attach_at_startup(sc):
    """Attach the manager to a SparkContext that was just initialised (once).

    A setting that only the running context can check (a budget above Spark's storage
    memory, a profile of another application) ends the program like a bad value does.
    """
    from blaze.manager import active_manager, attach

    existing = active_manager(sc)
    if existing is not None:
        return existing
    try:
        manager = attach(sc)
    except BlazeError as exc:
        fail_startup(str(exc))
        return None
    return manager
