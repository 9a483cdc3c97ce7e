"""The JVM plugin's classes seen from Python: put its jar on a running driver, talk to its
driver half.

Why apart from :mod:`blaze._jvm`: that module wraps Spark's own internals, which shift between
releases; these calls reach blaze-spark's own Java classes (``blaze_jvm/java``), which ship
with this package and change with it. Every call tolerates a session started without the
plugin (the classes are then not loadable).
"""

from __future__ import annotations

__all__ = ["PluginMailbox", "add_jar_to_running_driver", "plugin_class"]


def add_jar_to_running_driver(jar: str, probe_class: str) -> bool:
    """Make ``probe_class`` (from ``jar``) loadable by a driver JVM that is already running.

    Why: ``spark.jars`` puts a jar on the driver's class path only when it is given to
    spark-submit, i.e. before the JVM starts; a JVM started earlier (``spark-submit app.py``,
    a second SparkContext in the same process) would fail to load the plugin. spark-submit's
    class loader (Spark's ``MutableURLClassLoader``, the context loader of py4j's threads) is
    the one it adds ``--jars`` to, so the jar is added to it the same way. False when no JVM
    runs yet (then ``spark.jars`` does it at launch); raises ``JavaError`` if it cannot.
    """
    from py4j.protocol import Py4JJavaError
    from pyspark.core.context import SparkContext

    from blaze_errors import JavaError

    jvm = SparkContext._jvm
    if jvm is None:
        return False
    loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
    try:
        jvm.java.lang.Class.forName(probe_class, False, loader)
        return True
    except Py4JJavaError:
        pass
    if str(loader.getClass().getName()) != "org.apache.spark.util.MutableURLClassLoader":
        raise JavaError(f"the running JVM cannot load {probe_class}: start Spark with --jars {jar}")
    loader.addURL(jvm.java.io.File(jar).toURI().toURL())
    return True


class PluginMailbox:
    """The driver half of the JVM plugin, seen from Python: queue orders for executors, read
    back what they did. None of its calls raise when the plugin is absent."""

    def __init__(self, sc) -> None:
        # a loaded class may have no running half (``active``)
        self._half = plugin_class(sc._jvm, "org.blazespark.BlazeDriverPlugin")
        # each static method looked up once: py4j resolves a class's member by a round trip
        # to the JVM at every access, which doubled the cost of every call below
        self._calls = {}

    def _call(self, name: str):
        call = self._calls.get(name)
        if call is None:
            call = self._calls[name] = getattr(self._half, name)
        return call

    @property
    def active(self) -> bool:
        return self._half is not None and bool(self._call("isActive")())

    def registered(self) -> set[str]:
        """Executors whose plugin half registered (orders for others are refused); ``"driver"``
        is the executor of local mode."""
        if self._half is None:
            return set()
        return {str(executor_id) for executor_id in self._call("registeredExecutors")()}

    def order_all(self, orders: list[tuple[str, int, int, int]]) -> list[tuple[str, int, int, int]]:
        """Queue ``(executor, rdd, split, action)`` orders in one py4j call; return the ones
        refused (that executor has no registered plugin half). Actions as
        ``org.blazespark.Order`` numbers them: 0 drop, 1 spill, 2 spill for good (later reads
        of the disk copy are not cached in memory again), 3 allow a block spilled for good
        back (its next read may cache it in memory)."""
        if self._half is None or not orders:
            return list(orders)
        text = "\n".join(" ".join(map(str, order)) for order in orders)
        refused = str(self._call("orderAll")(text)).splitlines()
        return [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in (x.split() for x in refused)]

    def outcomes(self) -> list[str]:
        """``"executor rdd split spill|drop|allow outcome"`` lines (or ``"executor unavailable
        why"``) reported since the last call."""
        return [] if self._half is None else str(self._call("drainOutcomes")()).splitlines()

    def timings(self) -> list[tuple[str, int, int]]:
        """``(executor, ask round trip µs, onTaskStart µs)`` samples since the last call."""
        if self._half is None:
            return []
        rows = (line.split() for line in str(self._call("drainTimings")()).splitlines())
        return [(r[0], int(r[1]), int(r[2])) for r in rows if len(r) == 3]

    def live_executors(self) -> set[str]:
        """Executors that fetched their orders in the last second (a lost one stops)."""
        return set() if self._half is None else set(str(self._call("liveExecutors")()).split())


def plugin_class(jvm, name: str):
    """The plugin jar's class ``name``, or None when the session was started without it
    (py4j resolves an unknown class as a package)."""
    from py4j.java_gateway import JavaClass

    found = jvm
    for part in name.split("."):
        found = getattr(found, part)
    return found if isinstance(found, JavaClass) else None
