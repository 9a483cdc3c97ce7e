"""The registry of datasets: every RDD the program creates, and what persist/unpersist do.

Why the manager stamps every Python RDD: PySpark pipelines chained Python transformations
into one JVM RDD, so only the Python side sees the datasets a user names. Each gets a token
and its *site* (the user's source lines that created it), which matches the same dataset
across iterations and across runs (profiles). A persisted dataset (an RDD, or a DataFrame's
cached RDD) is registered under its JVM RDD id, which is what block events name.

``persist``/``cache`` calls: under ``spark`` they keep the program's level (observe only);
a ``blaze.BLAZE`` level, any level while autoCache is on, and any level under a policy that
acts on the program's own calls alone (the baselines: no autoCache) becomes a *managed*
dataset at the policy's JVM level, its partitions timed (:mod:`lineage.timing`); ``none``
ignores them; ``spark.blaze.userCache=ignore`` ignores the program's own calls (so does the
``blaze_auto`` policy) and leaves every choice to autoCache and autoUnpersist.
"""

from __future__ import annotations

import os
import sys
import weakref
from dataclasses import dataclass
from typing import Any

from blaze.levels import is_blaze_level, storage_level

__all__ = ["ManagedDataset", "RegistryMixin", "thin_over_cache", "user_site"]

SITE_FRAMES = 3  # user frames that name a dataset's site

_PYSPARK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__import__("pyspark").__file__)))
_BLAZE_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclass
class ManagedDataset:
    """A persisted dataset the manager answers for (an RDD or a DataFrame's cached RDD)."""

    rdd_id: int
    token: int
    site: str
    kind: str  # "rdd" | "dataframe"
    ref: Any  # weakref to the Python object, or None
    managed: bool  # the manager may move/drop/unpersist it (False: observe only)


def user_site() -> str:
    """Where the user created a dataset: the innermost ``SITE_FRAMES`` frames outside pyspark
    and blaze, innermost first (``helpers.py:12 < job.py:40 < main.py:9``).

    Why more than one frame: programs cache through a helper of their own (``def cached(rdd):
    return rdd.persist()``); with the innermost line alone every dataset the helper persists
    shares one site, so the features read by every iteration look like an older generation
    of the per-iteration results and are retired. The calling lines tell them apart, while
    each generation a loop creates still has the same site.
    """
    frame = sys._getframe(2)
    lines: list[str] = []
    while frame is not None and len(lines) < SITE_FRAMES:
        filename = frame.f_code.co_filename
        if not (
            filename.startswith(_PYSPARK_DIR)
            or filename.startswith(_BLAZE_DIR)
            or filename.startswith("<frozen")
        ):
            lines.append(f"{os.path.basename(filename)}:{frame.f_lineno}")
        frame = frame.f_back
    return " < ".join(lines) if lines else "<unknown>"


def thin_over_cache(rdd) -> bool:
    """A Python step straight over a persisted RDD (``cached.map(f)``): autoCache skips it.

    Recomputing it is one pass of ``f`` over partitions already in the cache, while caching
    it would hold a second copy of nearly the same data in the same memory — under pressure
    that evicts the cached parent it was derived from (the costly data) first.
    """
    node = getattr(rdd, "prev", None)
    while node is not None:  # PySpark keeps each pipelined step's ``prev``
        if getattr(node, "is_cached", False):
            return True
        node = getattr(node, "prev", None)
    return False


class RegistryMixin:
    """Dataset registration and the wrapped persist/unpersist of :class:`BlazeManager`."""

    # ---- registration ----------------------------------------------------------------------
    def _on_rdd_created(self, rdd) -> None:
        try:
            token = next(self._tokens)
            rdd._blaze_token = token
            site = user_site()
            with self._lock:
                self._tracker.register(token, site)
                self._objects[token] = weakref.ref(rdd, self._released_tokens_callback(token))
                self._unresolved.append(token)
        except Exception as exc:
            self._count_error("register", exc)

    def _token_of(self, obj) -> int:
        token = getattr(obj, "_blaze_token", None)
        if token is None:
            token = next(self._tokens)
            obj._blaze_token = token
            with self._lock:
                self._tracker.register(token, user_site())
                self._objects[token] = weakref.ref(obj, self._released_tokens_callback(token))
        return token

    def _released_tokens_callback(self, token: int):
        """A weakref callback that queues ``token`` when the program drops the dataset (it
        runs inside the garbage collector, on any thread: a deque append needs no lock)."""
        released = self._released_tokens
        return lambda _ref: released.append(token)

    def _forget_released(self) -> None:
        """Drop the records of datasets the program can no longer reach (called under the
        lock at each job's end), so a program of thousands of generations keeps books only
        for its live datasets. One still persisted in Spark waits until it is unpersisted: a
        DataFrame's cache can be matched again by a new DataFrame of the same plan."""
        still_cached = []
        while self._released_tokens:
            token = self._released_tokens.popleft()
            use = self._tracker.datasets.get(token)
            if use is not None and use.persisted:
                still_cached.append(token)
                continue
            self._tracker.forget(token)
            self._objects.pop(token, None)
            rdd_id = self._rdd_of_token.pop(token, None)
            if rdd_id is not None and self._token_by_rdd_id.get(rdd_id) == token:
                del self._token_by_rdd_id[rdd_id]
        self._released_tokens.extend(still_cached)

    def _register_dataset(self, obj, rdd_id: int, kind: str, *, managed: bool) -> None:
        token = self._token_of(obj)
        with self._lock:
            site = self._tracker.datasets[token].site
            self._datasets[rdd_id] = ManagedDataset(
                rdd_id, token, site, kind, weakref.ref(obj), managed
            )
            self._token_by_rdd_id[rdd_id] = token
            self._rdd_of_token[token] = rdd_id
            self._tracker.mark_persisted(token, managed=managed)
            self._engine.refresh(rdd_id)
            if managed:
                self._ledger.counters.decisions[f"persist_{kind}"] += 1
                self._predict_sizes(rdd_id, site)

    def _site_of(self, rdd_id: int) -> str | None:
        dataset = self._datasets.get(rdd_id)
        return dataset.site if dataset is not None else None

    def _future_fallback(self, rdd_id: int) -> float:
        """Job-level F of a dataset when the DAG shows no reference (0 for non-datasets)."""
        dataset = self._datasets.get(rdd_id)
        if dataset is None:
            return 0.0
        return self._tracker.future_uses(dataset.token)

    def _jobs_to_next_read(self, rdd_id: int) -> int:
        """How many jobs until a dataset's next predicted read, from when it was last read:
        one read by the current job comes back with the next; one not read for k jobs is
        predicted to be read about k jobs from now (MRD's distance to a later job's read)."""
        dataset = self._datasets.get(rdd_id)
        use = self._tracker.datasets.get(dataset.token) if dataset is not None else None
        if use is None or use.last_job < 0:
            return 1
        return max(self._tracker.job_index - use.last_job + 1, 1)

    def _predict_sizes(self, rdd_id: int, site: str) -> None:
        """Register, before it is computed, each partition size predicted for a new dataset:
        ``costmodel.predict`` regressions over earlier datasets of the same site (the last
        size until it has enough points), so the report can compare them with what Spark
        stores and the cost model can price partitions nobody has measured yet."""
        try:
            self._predictors.register_rdd(rdd_id, site)
            for split, last_size in self._site_sizes.get(site, {}).items():
                guess = self._predictors.predict(site, split=split)
                size = guess.size_bytes if guess is not None else last_size
                self._ledger.predict_size((rdd_id, split), size)
        except Exception as exc:
            self._count_error("predict", exc)

    # ---- persist / unpersist ------------------------------------------------------------------
    def _ignores_user_cache(self) -> bool:
        ignore = self.config.user_cache == "ignore" or self.policy.ignores_cache_calls
        return ignore and self.policy.acts

    def _persist_rdd(self, rdd, level, original, *, auto: bool = False):
        from pyspark import StorageLevel

        level = StorageLevel.MEMORY_ONLY if level is None else level
        blaze_level = is_blaze_level(level)
        if getattr(rdd, "_blaze_managed", False):
            return rdd
        if not self.policy.manages and self.policy.caches:  # ``spark``: observe only
            original(rdd, StorageLevel.MEMORY_ONLY if blaze_level else level)
            self._register_dataset(rdd, rdd.id(), "rdd", managed=False)
            return rdd
        if not auto and self._ignores_user_cache():
            rdd.is_cached = False  # RDD.cache() sets it before calling persist
            with self._lock:
                self._ledger.counters.decisions["user_cache_ignored"] += 1
            return rdd
        if auto or blaze_level or self.config.auto_cache or not self.policy.auto_cache:
            if not self.policy.caches:
                rdd.is_cached = False
                with self._lock:
                    self._ledger.counters.decisions["persist_ignored"] += 1
                return rdd
            self._inputs.instrument(rdd, self._token_of(rdd))  # R: its own compute time
            original(rdd, storage_level(self.policy.jvm_level_name()))
            rdd._blaze_managed = True
            self._register_dataset(rdd, rdd.id(), "rdd", managed=True)
            return rdd
        original(rdd, level)
        self._register_dataset(rdd, rdd.id(), "rdd", managed=False)
        return rdd

    def _persist_df(self, df, level, original, *, cache: bool = False):
        from pyspark import StorageLevel

        if getattr(df, "_blaze_managed", False):
            return df
        blaze_level = is_blaze_level(level)
        persist = self._originals["DataFrame.persist"]
        if self._ignores_user_cache():
            with self._lock:
                self._ledger.counters.decisions["user_cache_ignored"] += 1
            return df
        observe_only = not self.policy.manages and self.policy.caches
        takes_calls = blaze_level or self.config.auto_cache or not self.policy.auto_cache
        if observe_only or not takes_calls:
            if blaze_level:
                persist(df, StorageLevel.MEMORY_AND_DISK_DESER)
            elif cache:
                original(df)
            else:
                persist(df, StorageLevel.MEMORY_AND_DISK_DESER if level is None else level)
            managed = False
        elif not self.policy.caches:
            df.is_cached = False
            with self._lock:
                self._ledger.counters.decisions["persist_ignored"] += 1
            return df
        else:
            # serialized: the columnar batches as bytes take a fraction of the memory the
            # deserialized level's estimates claim, and in a squeezed pool the deserialized
            # blocks left DataFrame aggregations no execution memory (UNABLE_TO_ACQUIRE_MEMORY)
            persist(df, storage_level(self.policy.jvm_level_name(), deserialized=False))
            df._blaze_managed = True
            managed = True
        rdd_id = self._bridge.dataframe_rdd_id(df)
        if rdd_id is not None:
            self._register_dataset(df, rdd_id, "dataframe", managed=managed)
        return df

    def _unpersist(self, obj, blocking, original):
        result = original(obj, blocking)
        obj._blaze_managed = False
        token = getattr(obj, "_blaze_token", None)
        with self._lock:
            for rdd_id, dataset in list(self._datasets.items()):
                if dataset.token == token:
                    del self._datasets[rdd_id]
                    self._forget_rdd(rdd_id, "user_unpersist")
            if token is not None:
                self._tracker.mark_unpersisted(token)
        return result

    def _auto_unpersist(self, token: int, why: str) -> None:
        dataset = next((d for d in self._datasets.values() if d.token == token), None)
        if dataset is None or not dataset.managed:
            return
        obj = dataset.ref() if dataset.ref is not None else None
        if obj is not None:
            key = "RDD.unpersist" if dataset.kind == "rdd" else "DataFrame.unpersist"
            self._originals[key](obj, False)
            obj._blaze_managed = False
        else:
            self._bridge.unpersist_rdd(dataset.rdd_id)
        del self._datasets[dataset.rdd_id]
        self._tracker.mark_unpersisted(token)
        self._forget_rdd(dataset.rdd_id, "auto_unpersist")
        self._ledger.counters.decisions["auto_unpersist"] += 1
        self._explain.record(
            "auto_unpersist", rdd=dataset.rdd_id, kind=dataset.kind, site=dataset.site, rule=why
        )

    def _forget_rdd(self, rdd_id: int, reason: str) -> None:
        self._observed.pop(rdd_id, None)
        splits = self._ledger.cached_partitions(rdd_id)
        self._ledger.forget_rdd(rdd_id, reason)
        self._engine.forget(rdd_id, splits)
        if splits:
            self._prefetch(f"rdd {rdd_id} unpersisted")
