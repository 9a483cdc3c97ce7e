"""The PySpark methods an attached manager wraps, and their exact restoration on detach.

Why wrap at all: listener events arrive after the fact, but some decisions must precede
computation — persisting a reused RDD before the job that computes it, choosing the level of a
``persist(blaze.BLAZE)`` call, unpersisting a dataset once the job that last used it ends.
Every RDD action reaches the JVM through ``RDD.collect``, ``RDD.toLocalIterator`` or
``SparkContext.runJob`` (``count``, ``reduce``, ``take``... call one of them), so wrapping those
three gives a synchronous point before and after each job. Nothing is patched at import time:
:func:`install` runs inside :func:`blaze.attach` and :func:`uninstall` restores the originals
(also when ``SparkContext.stop`` detaches the manager).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["install", "uninstall"]

_BLAZE_DIR = os.path.dirname(os.path.abspath(__file__))
_installed: list[tuple[type, str, Any]] = []
_lock = threading.Lock()
_depth = threading.local()


def _patch(owner: type, name: str, make: Callable[[Any], Any]) -> None:
    original = owner.__dict__[name]
    _installed.append((owner, name, original))
    wrapper = make(original)
    functools.update_wrapper(wrapper, original)
    wrapper.__blaze_wrapped__ = True
    setattr(owner, name, wrapper)


def _user_call_site(skip: int = 1) -> str | None:
    """PySpark's job call-site text ("count at app.py:12") as if no wrapper were in the stack.

    ``skip``: frames above the caller's to start from (1: the caller itself, a wrapper
    renamed after the action it wraps).
    """
    import pyspark

    pyspark_dir = os.path.dirname(os.path.abspath(pyspark.__file__))
    frame = sys._getframe(skip)
    inner = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename == functools.__file__:  # a cached_property's __get__: not a name
            frame = frame.f_back
            continue
        if not (filename.startswith(pyspark_dir) or filename.startswith(_BLAZE_DIR)):
            if inner is None:
                return None
            return f"{inner.f_code.co_name} at {filename}:{frame.f_lineno}"
        inner = frame
        frame = frame.f_back
    return None


@contextlib.contextmanager
def _user_call_site_held(sc):
    """Name the jobs started inside after the user's line, and keep PySpark from renaming them.

    PySpark names a job after the frame just outside its own package, which is this
    module's wrapper when one is in the stack: the wrapper sets the call site itself (from
    the first frame outside pyspark and blaze) and holds PySpark's call-site depth, so jobs
    keep their usual names in the logs, the UI, the event log and the lineage DAG. Must be
    entered from the wrapper's own frame (see :func:`_user_call_site`).
    """
    from pyspark.traceback_utils import SCCallSiteSync

    from blaze._jvm import set_call_site

    own_site = SCCallSiteSync._spark_stack_depth == 0
    if own_site:
        set_call_site(sc, _user_call_site(skip=3))
    SCCallSiteSync._spark_stack_depth += 1
    try:
        yield
    finally:
        SCCallSiteSync._spark_stack_depth -= 1
        if own_site:
            set_call_site(sc, None)


def _named_after(wrapper, original):
    """``wrapper`` with the code name of ``original``: the action's name in the call site."""
    wrapper.__code__ = wrapper.__code__.replace(
        co_name=original.__name__, co_qualname=original.__qualname__
    )
    return wrapper


def _job_wrapper(manager, original, rdd_of: Callable[..., Any]):
    """Run the manager's before/after-job steps around the outermost action call only."""

    def wrapper(*args, **kwargs):
        depth = getattr(_depth, "value", 0)
        if depth:
            return original(*args, **kwargs)
        _depth.value = 1
        rdd = rdd_of(*args, **kwargs)
        try:
            with _user_call_site_held(rdd.ctx):
                manager.boundaries.before_job(rdd)
                try:
                    return original(*args, **kwargs)
                finally:
                    manager.boundaries.after_job()
        finally:
            _depth.value = 0

    return _named_after(wrapper, original)


def _dataframe_action_wrapper(manager, original):
    """After the outermost DataFrame action: the generations its jobs superseded are
    unpersisted before the program goes on (:mod:`blaze.boundaries`)."""

    def wrapper(self, *args, **kwargs):
        if getattr(_depth, "value", 0):
            return original(self, *args, **kwargs)
        try:
            with _user_call_site_held(self.sparkSession.sparkContext):
                return original(self, *args, **kwargs)
        finally:
            _depth.value = 1  # what the step runs is the manager's, not the program's
            try:
                manager.boundaries.after_dataframe_job()
            finally:
                _depth.value = 0

    return _named_after(wrapper, original)


def _dataframe_call_site_wrapper(original):
    """A DataFrame method that may run jobs (``rdd`` plans and runs the shuffles below it)
    named after the user's line."""

    def wrapper(self, *args, **kwargs):
        with _user_call_site_held(self.sparkSession.sparkContext):
            return original(self, *args, **kwargs)

    return _named_after(wrapper, original)


def _patch_property(owner: type, name: str, make: Callable[[Any], Any]) -> None:
    """Wrap the getter of a ``property`` or ``functools.cached_property`` (``DataFrame.rdd``)."""
    original = owner.__dict__[name]
    _installed.append((owner, name, original))
    if isinstance(original, functools.cached_property):
        replacement = functools.cached_property(make(original.func))
        replacement.__set_name__(owner, name)
    else:
        replacement = property(make(original.fget), doc=original.__doc__)
    setattr(owner, name, replacement)


DATAFRAME_ACTIONS = ("collect", "count", "toPandas", "show")


def install(manager) -> dict[str, Any]:
    """Wrap PySpark's persist/unpersist, job entry points, RDD constructors, the making of a
    pipelined RDD's JVM RDD (``PipelinedRDD._jrdd``: see ``Registry.on_materialized``) and stop.

    Returns the original methods by ``"Class.name"`` so the manager can call them.
    """
    from pyspark.core.context import SparkContext
    from pyspark.core.rdd import RDD, PipelinedRDD
    from pyspark.sql.classic.dataframe import DataFrame

    with _lock:
        if _installed:
            raise RuntimeError("a Blaze manager is already attached in this process")

        def init_wrapper(original):
            def __init__(self, *args, **kwargs):
                original(self, *args, **kwargs)
                manager.registry.on_rdd_created(self)

            return __init__

        def pipelined_init_wrapper(original):
            def __init__(self, prev, *args, **kwargs):
                # before PySpark fuses ``prev`` into this new RDD's pipeline: a dataset known
                # to be reused must be persisted now, or this child would never read its cache
                manager.boundaries.before_derive(prev)
                original(self, prev, *args, **kwargs)
                manager.registry.on_rdd_created(self)

            return __init__

        def jrdd_wrapper(original):
            def _jrdd(self):
                fresh = not self._jrdd_val
                jrdd = original(self)
                if fresh:
                    manager.registry.on_materialized(self)
                return jrdd

            return _jrdd

        _patch(RDD, "__init__", init_wrapper)
        _patch(PipelinedRDD, "__init__", pipelined_init_wrapper)
        _patch_property(PipelinedRDD, "_jrdd", jrdd_wrapper)
        _patch(
            RDD,
            "persist",
            lambda original: (
                lambda self, storageLevel=None: manager.persistence.persist_rdd(
                    self, storageLevel, original
                )
            ),
        )
        _patch(
            RDD,
            "unpersist",
            lambda original: (
                lambda self, blocking=False: manager.persistence.unpersist(self, blocking, original)
            ),
        )
        _patch(
            DataFrame,
            "persist",
            lambda original: (
                lambda self, storageLevel=None: manager.persistence.persist_df(
                    self, storageLevel, original
                )
            ),
        )
        _patch(
            DataFrame,
            "cache",
            lambda original: (
                lambda self: manager.persistence.persist_df(self, None, original, cache=True)
            ),
        )
        _patch(
            DataFrame,
            "unpersist",
            lambda original: (
                lambda self, blocking=False: manager.persistence.unpersist(self, blocking, original)
            ),
        )
        for action in DATAFRAME_ACTIONS:
            _patch(DataFrame, action, lambda o: _dataframe_action_wrapper(manager, o))
        _patch_property(DataFrame, "rdd", _dataframe_call_site_wrapper)
        _patch(RDD, "collect", lambda o: _job_wrapper(manager, o, lambda self: self))
        _patch(
            RDD,
            "toLocalIterator",
            lambda o: _job_wrapper(manager, o, lambda self, *a, **k: self),
        )
        _patch(
            SparkContext,
            "runJob",
            lambda o: _job_wrapper(manager, o, lambda sc, rdd, *a, **k: rdd),
        )

        def stop_wrapper(original):
            def stop(self):
                manager.on_spark_stop(self)
                return original(self)

            return stop

        _patch(SparkContext, "stop", stop_wrapper)
        return {f"{owner.__name__}.{name}": original for owner, name, original in _installed}


def uninstall() -> None:
    """Put every wrapped method back (idempotent)."""
    with _lock:
        while _installed:
            owner, name, original = _installed.pop()
            setattr(owner, name, original)


def installed() -> bool:
    return bool(_installed)
