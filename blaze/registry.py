"""The registry of datasets: every RDD the program creates, and what persist/unpersist do.

Why the manager stamps every Python RDD: PySpark pipelines chained Python transformations
into one JVM RDD, so only the Python side sees the datasets a user names. Each gets a token
and its *site* (the user's source lines that created it), which matches the same dataset
across iterations and across runs (profiles). A persisted dataset (an RDD, or a DataFrame's
cached RDD) is registered under its JVM RDD id, which is what block events name.

What persist/unpersist calls do is :mod:`blaze.persistence`'s job; this module only keeps
the book of datasets (one owner: :class:`Registry`), read by every other part.
"""

from __future__ import annotations

import functools
import itertools
import os
import sys
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from blaze._jvm import jvm_rdd_class
from blaze.tracker import UsageTracker

__all__ = [
    "ManagedDataset",
    "Registry",
    "SiteNames",
    "cached_source",
    "creation_point",
    "mark_of",
    "parallelized",
    "thin_over_cache",
    "worth_auto_caching",
]

SITE_FRAMES = 3  # user frames that name a dataset's site

_PYSPARK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__import__("pyspark").__file__)))
_BLAZE_DIR = os.path.dirname(os.path.abspath(__file__))


def mark_of(obj, name: str, default: Any = None) -> Any:
    """A mark the manager set on a program's dataset (``_blaze_token`` & co.), read from the
    object's own attributes: a DataFrame answers a name it lacks by asking the JVM for its
    schema (``DataFrame.__getattr__``), a py4j round trip at every persist or unpersist."""
    return getattr(obj, "__dict__", {}).get(name, default)


@dataclass
class ManagedDataset:
    """A persisted dataset the manager answers for (an RDD or a DataFrame's cached RDD)."""

    rdd_id: int
    token: int
    site: str
    kind: str  # "rdd" | "dataframe"
    ref: Any  # weakref to the Python object, or None
    managed: bool  # the manager may move/drop/unpersist it (False: observe only)


def creation_point(depth: int = 2) -> tuple[str, tuple[tuple[str, int], ...]]:
    """Where the user created a dataset, and by which library steps (see :class:`SiteNames`).

    The user part is the innermost ``SITE_FRAMES`` frames outside pyspark (site-packages) and
    blaze, innermost first (``helpers.py:12 < job.py:40 < main.py:9``). Why more than one
    frame: programs cache through a helper of their own (``def cached(rdd): return
    rdd.persist()``); with the innermost line alone every dataset the helper persists shares
    one site, so the features read by every iteration look like an older generation of the
    per-iteration results and are retired. The calling lines tell them apart, while each
    generation a loop creates still has the same site.

    Why the innermost frame also names the column where the creating call ends
    (``job.py:80:52``): one statement often makes several datasets
    (``sc.textFile(path).map(parse).persist()``). With the line alone they share a site, so
    the source RDD reads as the older generation of the persisted one; when the program drops
    it, its one use becomes the site's expected count and the features every iteration reads
    are unpersisted after their first job. Each call of a chain ends at its own column, while
    every pass of a loop through the same call ends at the same one.

    The steps are the library frames (function, line) between the user's call and the
    dataset: one call such as ``reduceByKey`` makes several RDDs, each by its own steps.
    """
    frame = sys._getframe(depth)
    lines: list[str] = []
    steps: list[tuple[str, int]] = []
    while frame is not None and len(lines) < SITE_FRAMES:
        filename = frame.f_code.co_filename
        if filename.startswith(_PYSPARK_DIR) or filename.startswith("<frozen"):
            if not lines:
                steps.append((frame.f_code.co_name, frame.f_lineno))
        elif not filename.startswith(_BLAZE_DIR):
            line = f"{os.path.basename(filename)}:{frame.f_lineno}"
            lines.append(line if lines else line + _call_end_column(frame))
        frame = frame.f_back
    return (" < ".join(lines) if lines else "<unknown>"), tuple(steps)


class SiteNames:
    """Names the datasets one user call makes: the first kind of RDD a call site makes keeps
    the plain site, the k-th other kind is ``site#k``.

    Why: ``rdd.reduceByKey(f)`` creates the map-side combine, the keyed shuffle input and the
    result, all at the user's same line and column. Sharing one site they read as three
    generations of one dataset per iteration, so the result's cache made the site "reused"
    and autoCache cached both intermediates of every later iteration, and their drops
    counted as the result's uses. The library steps that made each RDD are the same in every
    pass of a loop, so the k-th kind of a site is the same dataset from one pass to the next.
    """

    def __init__(self) -> None:
        self._kinds: dict[str, list[tuple[tuple[str, int], ...]]] = {}

    def name(self, user: str, steps: tuple[tuple[str, int], ...]) -> str:
        kinds = self._kinds.setdefault(user, [])
        if steps not in kinds:
            kinds.append(steps)
        k = kinds.index(steps) + 1
        return user if k == 1 else f"{user}#{k}"


def _call_end_column(frame) -> str:
    """``:column`` where the call the frame is executing ends ("" when Python cannot say)."""
    try:
        end_column = _end_columns(frame.f_code)[frame.f_lasti // 2]
    except (AttributeError, IndexError):
        return ""
    return "" if end_column is None else f":{end_column}"


@functools.lru_cache(maxsize=256)
def _end_columns(code) -> tuple[int | None, ...]:
    """The end column of each instruction of ``code``, kept per code object: a loop creates
    its datasets from the same few lines, and a module's positions are a list as long as
    the module."""
    return tuple(position[3] for position in code.co_positions())


def thin_over_cache(rdd) -> bool:
    """A Python step straight over a persisted RDD (``cached.map(f)``): autoCache skips it.

    Recomputing it is one pass of ``f`` over partitions already in the cache, while caching
    it would hold a second copy of nearly the same data in the same memory — under pressure
    that evicts the cached parent it was derived from (the costly data) first. Not over a
    persisted :func:`parallelized` list: that parent is not the costly data, and the step
    over it is the program's input (a list of file names and the lines read from them —
    taking it for thin left the suite's kmeans re-reading its files every iteration).
    """
    source = cached_source(rdd)
    return source is not None and not parallelized(source)


def worth_auto_caching(rdd) -> bool:
    """autoCache may persist ``rdd``: neither a step thin over a cached dataset nor a
    parallelized list (asked of the candidates only: :func:`parallelized` may ask Spark)."""
    return not (thin_over_cache(rdd) or parallelized(rdd))


def parallelized(rdd) -> bool:
    """``rdd`` is data the driver handed to ``sc.parallelize``: each task carries its
    partition already, so a cached copy saves nothing — autoCache never persists one.

    Asked of Spark (the JVM RDD's class) only for an RDD PySpark did not pipeline: a
    ``PipelinedRDD`` (``prev`` set) runs Python code and is never a parallelized list.
    """
    if getattr(rdd, "prev", None) is not None:
        return False
    known = mark_of(rdd, "_blaze_parallelized")
    if known is None:
        known = jvm_rdd_class(rdd) == "ParallelCollectionRDD"
        rdd._blaze_parallelized = known
    return known


def cached_source(rdd):
    """The nearest persisted dataset a Python step reads through its ``prev`` chain (PySpark
    keeps each pipelined step's ``prev``), or None."""
    node = getattr(rdd, "prev", None)
    while node is not None:
        if getattr(node, "is_cached", False):
            return node
        node = getattr(node, "prev", None)
    return None


class Registry:
    """The book of datasets: tokens of every Python dataset, sites, and the persisted ones.

    ``tracker`` (the per-site usage tracker) is owned here because its keys are this book's
    tokens. Not thread-safe by itself: callers hold the manager's lock, except for
    :meth:`on_rdd_created`, which takes ``lock`` itself (it runs on the user's thread).
    """

    def __init__(self, tracker: UsageTracker, lock, on_error: Callable[[str, Exception], None]):
        self.tracker = tracker
        self._lock = lock
        self._on_error = on_error
        self._tokens = itertools.count(1)
        self._objects: dict[int, Any] = {}  # token -> weakref to the Python dataset
        self.token_by_rdd_id: dict[int, int] = {}
        self.rdd_of_token: dict[int, int] = {}  # every dataset ever registered
        self._jvm_ids: dict[int, int] = {}  # token -> JVM rdd id, once PySpark has made it
        self.datasets: dict[int, ManagedDataset] = {}  # persisted datasets, by JVM rdd id
        self._released: deque[int] = deque()  # tokens of datasets the program dropped
        self._site_names = SiteNames()

    # ---- registration ----------------------------------------------------------------------
    def on_rdd_created(self, rdd) -> None:
        try:
            token = next(self._tokens)
            rdd._blaze_token = token
            user, steps = creation_point()
            prev = mark_of(getattr(rdd, "prev", None), "_blaze_token")
            rdd_id = getattr(rdd, "_id", None)  # a plain RDD has its JVM RDD from the start
            with self._lock:
                self.tracker.register(token, self._site_names.name(user, steps), prev)
                self._objects[token] = weakref.ref(rdd, self._release_callback(token))
                if rdd_id is not None:
                    self._learn_jvm_id(token, int(rdd_id))
        except Exception as exc:
            self._on_error("register", exc)

    def on_materialized(self, rdd) -> None:
        """PySpark made the JVM RDD of a pipelined step (its ``_jrdd``): the one place a
        pipelined step's JVM id is learnt (a plain RDD's is known at creation).

        Why here: PySpark asks a pipelined step for its id only when someone calls ``id()``,
        and the steps a library call makes internally (``a.join(b)`` maps both sides, unions
        them and drops them) are gone by the time the job runs. The job's JVM lineage names
        their JVM RDDs; knowing whose they are, and what each was derived from (recorded at
        creation), is how the job is seen to read the program's own ``a`` and ``b``.
        """
        token = mark_of(rdd, "_blaze_token")
        if token is None:
            return
        try:
            # PySpark's own id(): it keeps the id, which later calls then read for free
            rdd_id = int(rdd.id())
            with self._lock:
                self._learn_jvm_id(token, rdd_id)
        except Exception as exc:
            self._on_error("materialized", exc)

    def _learn_jvm_id(self, token: int, rdd_id: int) -> None:
        self.token_by_rdd_id.setdefault(rdd_id, token)
        self._jvm_ids[token] = rdd_id

    def token_of(self, obj) -> int:
        token = mark_of(obj, "_blaze_token")
        if token is None:
            token = next(self._tokens)
            obj._blaze_token = token
            user, steps = creation_point()
            with self._lock:
                self.tracker.register(token, self._site_names.name(user, steps))
                self._objects[token] = weakref.ref(obj, self._release_callback(token))
        return token

    def object_of(self, token: int):
        """The live Python dataset of ``token``, or None once the program dropped it."""
        ref = self._objects.get(token)
        return ref() if ref is not None else None

    def _release_callback(self, token: int):
        """A weakref callback that queues ``token`` when the program drops the dataset (it
        runs inside the garbage collector, on any thread: a deque append needs no lock)."""
        released = self._released
        return lambda _ref: released.append(token)

    def forget_released(self) -> list[int]:
        """Drop the records of datasets the program can no longer reach (called under the
        lock at each job's end), so a program of thousands of generations keeps books only
        for its live datasets. One still persisted in Spark waits until it is unpersisted: a
        DataFrame's cache can be matched again by a new DataFrame of the same plan. Returns
        the RDD ids let go."""
        still_cached, forgotten = [], []
        while self._released:
            token = self._released.popleft()
            use = self.tracker.datasets.get(token)
            if use is not None and use.persisted:
                still_cached.append(token)
                continue
            self.tracker.forget(token)
            self._objects.pop(token, None)
            for ids in (self.rdd_of_token, self._jvm_ids):
                rdd_id = ids.pop(token, None)
                if rdd_id is not None:
                    forgotten.append(rdd_id)
                    if self.token_by_rdd_id.get(rdd_id) == token:
                        del self.token_by_rdd_id[rdd_id]
        self._released.extend(still_cached)
        return forgotten

    def register_dataset(self, obj, rdd_id: int, kind: str, *, managed: bool) -> ManagedDataset:
        """Record a persisted dataset under its JVM rdd id (the caller holds the lock)."""
        token = self.token_of(obj)
        site = self.tracker.datasets[token].site
        dataset = ManagedDataset(rdd_id, token, site, kind, weakref.ref(obj), managed)
        self._index(dataset)
        self.tracker.mark_persisted(token, managed=managed)
        return dataset

    def _index(self, dataset: ManagedDataset) -> None:
        self.datasets[dataset.rdd_id] = dataset
        self.token_by_rdd_id[dataset.rdd_id] = dataset.token
        self.rdd_of_token[dataset.token] = dataset.rdd_id

    # ---- questions -----------------------------------------------------------------------
    def site_of(self, rdd_id: int) -> str | None:
        dataset = self.datasets.get(rdd_id)
        return dataset.site if dataset is not None else None

    def future_fallback(self, rdd_id: int) -> float:
        """F of a dataset from jobs not submitted yet, in reads (0 for non-datasets)."""
        dataset = self.datasets.get(rdd_id)
        if dataset is None:
            return 0.0
        return self.tracker.future_reads(dataset.token)

    def note_job_reads(self, rdd_id: int, reads: int) -> None:
        """A submitted job plans ``reads`` stages reading this dataset (the engine's count)."""
        dataset = self.datasets.get(rdd_id)
        if dataset is not None and reads > 0:
            self.tracker.note_reads(dataset.site, reads)

    def jobs_to_next_read(self, rdd_id: int) -> int:
        """How many jobs until a dataset's next predicted read, from when it was last read:
        one read by the current job comes back with the next; one not read for k jobs is
        predicted to be read about k jobs from now (MRD's distance to a later job's read)."""
        dataset = self.datasets.get(rdd_id)
        use = self.tracker.datasets.get(dataset.token) if dataset is not None else None
        if use is None or use.last_job < 0:
            return 1
        return max(self.tracker.job_index - use.last_job + 1, 1)

    def managed_ids(self) -> set[int]:
        return {rid for rid, d in self.datasets.items() if d.managed}

    def rekey(self, old_rdd_id: int, new_rdd_id: int) -> None:
        """Spark rebuilt a cached DataFrame under a new RDD id (``uncacheQuery`` of a plan it
        contains, while its own buffers were not loaded): the dataset follows its new id."""
        dataset = self.datasets.pop(old_rdd_id)
        if self.token_by_rdd_id.get(old_rdd_id) == dataset.token:
            del self.token_by_rdd_id[old_rdd_id]
        dataset.rdd_id = new_rdd_id
        self._index(dataset)

    def by_token(self, token: int | None) -> list[ManagedDataset]:
        return [d for d in self.datasets.values() if d.token == token]
