"""Each persisted PySpark dataset's own compute time per partition, measured where it runs.

Why: Spark reports time per task, never per RDD, and a task that stores a block usually goes
on to do more (the rest of its stage, a shuffle write): charging the whole task to the block
made recomputation look dearer than it is, and disk look better. The authors of Blaze timed
each RDD's partition inside their Spark fork; stock Spark gives nothing of the kind, but a
persisted PySpark dataset is one Python function over its JVM parent's partition (PySpark
pipelines every Python step since the last persisted or shuffled RDD into it), and that
function can be timed in the Python worker that runs it.

:meth:`PartitionTimer.instrument` wraps the function of a ``PipelinedRDD`` before its JVM RDD
is built (the dataset being persisted). The wrapper reports, per partition
(:class:`PartitionTime`):

- ``wall_ms``, from the first record asked for to the last one handed on: reading the parent's
  partition, the user's functions, and the worker pickling each batch of the result and
  handing it to the JVM's block store (the consumer runs while the wrapper waits at ``yield``).
  This is R: a persisted dataset's partition rebuilt later is pickled and stored again.
- ``own_ms``, the same less the time the consumer held it: what computing the partition costs
  where PySpark fuses the dataset into its reader's Python pipeline (not persisted: nothing
  pickled, nothing stored). ``wall_ms - own_ms`` is the price of persisting it at all.
- ``load_ms``, unpickling the whole partition once, from unpickling a sample of its records:
  what each read of a stored copy costs its reader in Python.

Together they say whether persisting a dataset pays (:mod:`costmodel.persisting`). The split
costs two clock reads per record (a few percent of the pickling each record costs), so it is
made until a site has enough timed partitions; after that a dataset of the site reports its
wall time alone (two clock reads per partition).
Spark merges accumulator updates into the driver before it posts the task's end to the
listener bus, so the driver holds a partition's time before it sees the task end;
:meth:`PartitionTimer.drain` hands the times over.

Datasets it cannot wrap — DataFrame caches (JVM code), RDDs that are not pipelined Python
functions, a dataset whose JVM RDD already existed — are not timed here; the caller falls
back to the task's time for them.

The worker side imports only this module (pure Python, no pyspark import), so a Python
worker pays nothing for it at start-up.
"""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

__all__ = ["PartitionTime", "PartitionTimer", "TimesParam", "timed"]

LOAD_SAMPLE = 32  # records kept to time unpickling (only when the partition has 4x as many)


class PartitionTime(NamedTuple):
    """One partition of a timed dataset, as its worker measured it (see the top)."""

    wall_ms: float
    own_ms: float | None  # None: not split (timed by wall alone)
    records: int | None
    load_ms: float | None  # None: not split, or too few records to sample without pickling
    # them all again


Times = dict[tuple[int, int], PartitionTime]  # (dataset token, split) -> its time


class TimesParam:
    """PySpark accumulator param (duck-typed: ``zero`` and ``addInPlace``): a dict of
    partition times, merged by key (a recomputation's time replaces the earlier one)."""

    def zero(self, value: Times) -> Times:
        return {}

    def addInPlace(self, value1: Times, value2: Times) -> Times:
        value1.update(value2)
        return value1


def _load_ms(sample: list, records: int) -> float | None:
    """Unpickling ``records`` records, from the time to unpickle ``sample`` of them as one
    pickled batch (PySpark's serializer pickles batches of records)."""
    if records < 4 * LOAD_SAMPLE:
        return None
    blob = pickle.dumps(sample, pickle.HIGHEST_PROTOCOL)
    start = time.perf_counter()
    pickle.loads(blob)
    return (time.perf_counter() - start) * 1000.0 * records / len(sample)


def timed(func: Callable, accumulator: Any, token: int, *, split: bool = True) -> Callable:
    """``func(split, iterator)`` that also reports the partition's :class:`PartitionTime`;
    without ``split``, its wall time alone (two clock reads per partition, nothing per record:
    a site whose costs are known already)."""

    def run_split(index: int, iterator: Iterable) -> Iterator:
        clock = time.perf_counter
        sample: list = []
        records = 0
        held = 0.0  # time the consumer held the records handed on
        start = clock()
        for record in func(index, iterator):
            if records < LOAD_SAMPLE:
                sample.append(record)
            records += 1
            handed = clock()
            yield record
            held += clock() - handed
        wall = (clock() - start) * 1000.0
        own = wall - held * 1000.0
        accumulator.add(
            {(token, index): PartitionTime(wall, own, records, _load_ms(sample, records))}
        )

    def run_wall(index: int, iterator: Iterable) -> Iterator:
        start = time.perf_counter()
        yield from func(index, iterator)
        wall = (time.perf_counter() - start) * 1000.0
        accumulator.add({(token, index): PartitionTime(wall, None, None, None)})

    return run_split if split else run_wall


class PartitionTimer:
    """The driver side: wraps datasets, and collects the times their partitions took."""

    def __init__(self, sc: Any) -> None:
        self._accumulator = sc.accumulator({}, TimesParam())
        self._lock = threading.Lock()

    def instrument(self, rdd: Any, token: int, *, split: bool = True) -> bool:
        """Time ``rdd``'s partitions from now on, under ``token`` (``split``: its own time
        and the consumer's apart); False if it cannot be (not a pipelined Python RDD, or its
        JVM RDD — and so its function — already built)."""
        if not callable(getattr(rdd, "func", None)) or getattr(rdd, "_jrdd_val", 0) is not None:
            return False
        rdd.func = timed(rdd.func, self._accumulator, token, split=split)
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
