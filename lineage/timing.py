"""Each persisted PySpark dataset's own compute time per partition, measured where it runs.

Why: Spark reports time per task, never per RDD, and a task that stores a block usually goes
on to do more (the rest of its stage, a shuffle write): charging the whole task to the block
made recomputation look dearer than it is, and disk look better. The authors of Blaze timed
each RDD's partition inside their Spark fork; stock Spark gives nothing of the kind, but a
persisted PySpark dataset is one Python function over its JVM parent's partition (PySpark
pipelines every Python step since the last persisted or shuffled RDD into it), and that
function can be timed in the Python worker that runs it.

:meth:`PartitionTimer.instrument` wraps the function of a ``PipelinedRDD`` before its JVM RDD
is built (the dataset being persisted); the wrapper measures the wall time from the first
record asked for to the last one handed on — reading the parent's partition, the user's
functions, pickling the result — and adds ``{(token, split): ms}`` to a PySpark accumulator.
Spark merges accumulator updates into the driver before it posts the task's end to the
listener bus, so the driver holds a partition's time before it sees the task end;
:meth:`PartitionTimer.drain` hands the times over. Two clock reads per partition: nothing
per record.

Datasets it cannot wrap — DataFrame caches (JVM code), RDDs that are not pipelined Python
functions, a dataset whose JVM RDD already existed — are not timed here; the caller falls
back to the task's time for them.

The worker side imports only this module (pure Python, no pyspark import), so a Python
worker pays nothing for it at start-up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["PartitionTimer", "TimesParam", "timed"]

Times = dict[tuple[int, int], float]  # (dataset token, split) -> wall ms


class TimesParam:
    """PySpark accumulator param (duck-typed: ``zero`` and ``addInPlace``): a dict of
    partition times, merged by key (a recomputation's time replaces the earlier one)."""

    def zero(self, value: Times) -> Times:
        return {}

    def addInPlace(self, value1: Times, value2: Times) -> Times:
        value1.update(value2)
        return value1


def timed(func: Callable, accumulator: Any, token: int) -> Callable:
    """``func(split, iterator)`` that also reports its wall time for the split."""

    def run(split: int, iterator: Iterable) -> Iterator:
        start = time.perf_counter()
        yield from func(split, iterator)
        accumulator.add({(token, split): (time.perf_counter() - start) * 1000.0})

    return run


class PartitionTimer:
    """The driver side: wraps datasets, and collects the times their partitions took."""

    def __init__(self, sc: Any) -> None:
        self._accumulator = sc.accumulator({}, TimesParam())
        self._lock = threading.Lock()

    def instrument(self, rdd: Any, token: int) -> bool:
        """Time ``rdd``'s partitions from now on, under ``token``; False if it cannot be
        (not a pipelined Python RDD, or its JVM RDD — and so its function — already built)."""
        if not callable(getattr(rdd, "func", None)) or getattr(rdd, "_jrdd_val", 0) is not None:
            return False
        rdd.func = timed(rdd.func, self._accumulator, token)
        return True

    def drain(self) -> Times:
        """Every time reported since the last drain (the accumulator server adds new ones
        from its own thread: each key is taken out once)."""
        with self._lock:
            value = self._accumulator.value
            taken = {}
            for key in list(value):
                ms = value.pop(key, None)
                if ms is not None:
                    taken[key] = ms
            return taken
