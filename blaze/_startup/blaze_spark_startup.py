"""Opt-in startup hook of blaze-spark (loaded by ``blaze-spark.pth`` in every interpreter).

Why a top-level module outside the ``blaze`` package: a ``.pth`` import runs in *every* Python
process of the environment, Spark's Python workers included, so it must import nothing heavy.
This module only puts a finder on ``sys.meta_path``; the finder reacts to exactly one import,
``pyspark.core.context``, and wraps ``SparkContext._do_init`` so that, once a SparkContext is
up, ``spark.blaze.enabled=true`` in its conf (e.g. ``spark-submit --conf
spark.blaze.enabled=true app.py``) attaches the cache manager. Any ``spark.blaze.*`` key is
validated before the context starts (a bad one ends the program with one line and exit code
2, as a bad command-line option would) and loads blaze-spark's JVM plugin: ``_do_init`` runs
after the py4j gateway's JVM is up but before it builds the JVM SparkContext, the moment
Spark reads ``spark.jars`` and ``spark.plugins``. Without such keys the wrapper reads the
conf once and returns.

Turn it off: leave ``spark.blaze.enabled`` false (the default), or set the environment variable
``BLAZE_SPARK_STARTUP=0`` (the finder is then never installed), or uninstall blaze-spark.
"""

import os
import sys

TARGET = "pyspark.core.context"
PREFIX = "spark.blaze."


def _blaze_pairs(jconf):
    """The ``spark.blaze.*`` entries of a JVM SparkConf: one py4j call when there are none
    (the usual case), so the hook costs every other program next to nothing."""
    return [(PREFIX + t._1(), t._2()) for t in jconf.getAllWithPrefix(PREFIX)]


CONF_ARG = 7  # _do_init(master, appName, sparkHome, pyFiles, environment, batchSize, serializer, conf, ...)


def _conf_arg(args, kwargs):
    return kwargs.get("conf", args[CONF_ARG] if len(args) > CONF_ARG else None)


def _with_conf_arg(args, kwargs, conf):
    """``args, kwargs`` with ``conf`` as ``_do_init``'s conf argument."""
    if "conf" in kwargs or len(args) <= CONF_ARG:
        return args, {**kwargs, "conf": conf}
    return (*args[:CONF_ARG], conf, *args[CONF_ARG + 1 :]), kwargs


def _conf_pairs(context_class, args, kwargs):
    """The ``spark.blaze.*`` part of the conf the context is about to start with (what
    ``_do_init`` will read): the JVM's system properties (``spark-submit --conf``,
    spark-defaults) overlaid by the builder's."""
    conf = _conf_arg(args, kwargs)
    if conf is not None and getattr(conf, "_jconf", None) is not None:
        return _blaze_pairs(conf._jconf)
    from blaze._jvm import launch_conf

    pairs = dict(_blaze_pairs(launch_conf(context_class)))
    if conf is not None:
        pairs.update((k, v) for k, v in conf.getAll() if k.startswith(PREFIX))
    return list(pairs.items())


def _wrap_context(module):
    context_class = getattr(module, "SparkContext", None)
    original = getattr(context_class, "_do_init", None)
    if original is None or getattr(original, "__blaze_startup__", False):
        return

    def _do_init(self, *args, **kwargs):
        # validate before Spark starts its context, so a typo costs one line, not a start-up;
        # nothing beyond one conf read happens unless a spark.blaze.* key is present
        blaze_conf = {
            k: v for k, v in _conf_pairs(context_class, args, kwargs) if k.startswith(PREFIX)
        }
        config = None
        if blaze_conf:
            from blaze.startup import load_plugin_at_startup, validate_at_startup

            config = validate_at_startup(blaze_conf)
            # the JVM is up but its SparkContext (which loads spark.plugins) is not yet
            conf = load_plugin_at_startup(_conf_arg(args, kwargs))
            args, kwargs = _with_conf_arg(args, kwargs, conf)
        original(self, *args, **kwargs)
        if config is not None and config.enabled:
            from blaze.startup import attach_at_startup

            attach_at_startup(self)

    _do_init.__blaze_startup__ = True
    _do_init.__wrapped__ = original
    context_class._do_init = _do_init


class _BlazeStartupFinder:
    """Finds nothing itself; wraps the loader of ``pyspark.core.context`` once."""

    def __init__(self):
        self._busy = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != TARGET or self._busy:
            return None
        self._busy = True
        try:
            import importlib.util

            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        loader_exec = spec.loader.exec_module

        class _Loader:
            def __init__(self, inner):
                self._inner = inner

            def create_module(self, spec):
                return self._inner.create_module(spec)

            def exec_module(self, module):
                loader_exec(module)
                try:
                    _wrap_context(module)
                except Exception as exc:  # never break pyspark's import
                    sys.stderr.write(f"blaze-spark startup hook disabled: {exc}\n")

            def __getattr__(self, name):
                return getattr(self._inner, name)

        spec.loader = _Loader(spec.loader)
        return spec


def install():
    if os.environ.get("BLAZE_SPARK_STARTUP", "1").strip() == "0":
        return
    if any(isinstance(f, _BlazeStartupFinder) for f in sys.meta_path):
        return
    module = sys.modules.get(TARGET)
    if module is not None:  # pyspark already imported (unusual at startup)
        _wrap_context(module)
        return
    sys.meta_path.insert(0, _BlazeStartupFinder())


install()
