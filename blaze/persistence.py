"""What the program's persist/cache/unpersist calls do under the manager, and autoUnpersist.

``persist``/``cache`` calls: under ``spark`` they keep the program's level (observe only);
a ``blaze.BLAZE`` level, any level while autoCache is on, and any level under a policy that
acts on the program's own calls alone (the baselines: no autoCache) becomes a *managed*
dataset at the policy's JVM level, its partitions timed (:mod:`lineage.timing`); ``none``
ignores them; ``spark.blaze.userCache=ignore`` ignores the program's own calls (so does the
``blaze_auto`` policy) and leaves every choice to autoCache and autoUnpersist. Under Blaze's
rule (and ``userCache=weigh``, the default) a call is declined — the dataset is not persisted
at all, so PySpark fuses it into its readers — when its site's earlier generations show that
persisting costs more than it saves (:mod:`costmodel.persisting`); only a Python map over a
stored input that is not iteration state is declined, so declining never lengthens a chain of
recomputation. A dataset that stops being persisted leaves every book at once (registry,
ledger, engine, measurements).
"""

from __future__ import annotations

import weakref
from typing import Any

from blaze.config import BlazeConfig
from blaze.engine import Engine
from blaze.explain import DecisionLog
from blaze.ledger import Ledger
from blaze.levels import is_blaze_level, storage_level
from blaze.measurements import SiteMeasurements
from blaze.placement import SitePlacement
from blaze.policies import ManagerPolicy
from blaze.prefetch import ReadBack
from blaze.registry import Registry, cached_source, mark_of

__all__ = ["Persistence"]


class Persistence:
    """The wrapped persist/unpersist of the manager; ``originals`` are PySpark's own methods
    (filled by :func:`blaze.hooks.install`)."""

    def __init__(
        self,
        *,
        registry: Registry,
        measurements: SiteMeasurements,
        ledger: Ledger,
        engine: Engine,
        bridge,
        policy: ManagerPolicy,
        config: BlazeConfig,
        explain: DecisionLog,
        lock,
        placement: SitePlacement,
        prefetcher: ReadBack | None = None,
    ) -> None:
        self._registry = registry
        self._measurements = measurements
        self._ledger = ledger
        self._engine = engine
        self._bridge = bridge
        self._policy = policy
        self._config = config
        self._explain = explain
        self._lock = lock
        self._prefetcher = prefetcher
        self._placement = placement
        self.originals: dict[str, Any] = {}
        # persisted DataFrames whose batches' RDD Spark has not made yet (it does when their
        # first action plans them): registered at the start of the next job, by id(df)
        self._unbuilt: dict[int, tuple[weakref.ref, bool]] = {}

    def _register(self, obj, rdd_id: int, kind: str, *, managed: bool) -> None:
        with self._lock:
            dataset = self._registry.register_dataset(obj, rdd_id, kind, managed=managed)
            self._engine.refresh(rdd_id)
            if managed:
                self._ledger.counters.decisions[f"persist_{kind}"] += 1
                predicted = self._measurements.predicted_sizes(rdd_id, dataset.site)
                for split, size in predicted.items():
                    self._ledger.size_score.predict((rdd_id, split), size)

    def _count(self, decision: str) -> None:
        with self._lock:
            self._ledger.counters.decisions[decision] += 1

    def _ignores_user_cache(self) -> bool:
        ignore = self._config.user_cache == "ignore" or self._policy.ignores_cache_calls
        return ignore and self._policy.acts

    def _observes_only(self) -> bool:
        """``spark``: the program's levels kept, the manager only watches."""
        return not self._policy.manages and self._policy.caches

    def _takes_call(self, blaze_level: bool) -> bool:
        """A cache call the manager takes over: a BLAZE level, autoCache on, or a policy that
        acts on the program's own calls alone (the baselines have no autoCache)."""
        return blaze_level or self._config.auto_cache or not self._policy.auto_cache

    def persist_rdd(self, rdd, level, original, *, auto: bool = False):
        from pyspark import StorageLevel

        level = StorageLevel.MEMORY_ONLY if level is None else level
        blaze_level = is_blaze_level(level)
        if mark_of(rdd, "_blaze_managed", False):
            return rdd
        if mark_of(rdd, "_blaze_declined", False):  # decided once per dataset
            rdd.is_cached = False
            return rdd
        if self._observes_only():
            original(rdd, StorageLevel.MEMORY_ONLY if blaze_level else level)
            self._register(rdd, rdd.id(), "rdd", managed=False)
            return rdd
        if not auto and self._ignores_user_cache():
            rdd.is_cached = False  # RDD.cache() sets it before calling persist
            self._count("user_cache_ignored")
            return rdd
        if auto or self._takes_call(blaze_level):
            if not self._policy.caches:
                rdd.is_cached = False
                self._count("persist_ignored")
                return rdd
            token = self._registry.token_of(rdd)
            if self._declined(rdd, token):
                rdd.is_cached = False
                rdd._blaze_declined = True
                return rdd
            site = self._registry.tracker.datasets[token].site
            self._measurements.instrument(rdd, token, site)  # R: its own time
            to_disk = self._policy.info.disk_for_good and self._placement.straight_to_disk(site)
            if to_disk:  # see blaze.placement: the site's last generation all went to disk
                original(rdd, StorageLevel.DISK_ONLY)
            else:
                original(rdd, storage_level(self._policy.jvm_level_name()))
            rdd._blaze_managed = True
            self._register(rdd, rdd.id(), "rdd", managed=True)
            if to_disk:
                with self._lock:
                    self._placement.placed(rdd.id(), on_disk=True)
                    self._explain.record(
                        "place_on_disk",
                        rdd=rdd.id(),
                        policy=self._policy.name,
                        rule="every placed partition of the site's last generation went to disk",
                    )
            return rdd
        original(rdd, level)
        self._register(rdd, rdd.id(), "rdd", managed=False)
        return rdd

    def keep_unread_in_memory_only(self, tokens) -> None:
        """Blaze's put-time rule (:mod:`blaze.placement`), as a job is about to start: each
        of the datasets it is the first to use that is persisted and that no later job is
        predicted to read is given the level MEMORY_ONLY (caller holds the lock)."""
        if not self._policy.info.disk_for_good:
            return
        tracker = self._registry.tracker
        for token in tokens:
            rdd_id = self._registry.rdd_of_token.get(token)
            dataset = self._registry.datasets.get(rdd_id)
            use = tracker.datasets.get(token)
            if (
                dataset is None
                or use is None
                or use.uses != 1
                or not dataset.managed
                or dataset.kind != "rdd"
                or rdd_id in self._placement.on_disk
                or rdd_id in self._placement.memory_only
                or tracker.future_reads(token) > 0
                or not self._bridge.keep_in_memory_only(rdd_id, dataset.ref and dataset.ref())
            ):
                continue
            self._placement.placed(rdd_id, on_disk=False)
            self._explain.record(
                "place_in_memory_only",
                rdd=rdd_id,
                policy=self._policy.name,
                rule="no later job is predicted to read it: evicted means dropped",
            )

    def _declined(self, rdd, token: int) -> bool:
        """Blaze's rule declines persisting ``rdd``: its site's earlier generations show that
        persisting costs more than it saves (the decision is logged with its figures)."""
        if not (self._policy.info.declines_unpaid and self._config.user_cache == "weigh"):
            return False
        source = cached_source(rdd)
        if source is None:
            return False
        with self._lock:
            tracker = self._registry.tracker
            site = tracker.datasets[token].site
            source_use = tracker.datasets.get(mark_of(source, "_blaze_token"))
            reads = tracker.expected_reads(site)
            if (
                reads is None
                or tracker.is_state_site(site)
                or (source_use is not None and source_use.site == site)
            ):
                return False
            case = self._measurements.persist_case(site, reads)
            if case is None:
                return False
            declined = not case.pays
            if declined:
                self._ledger.counters.decisions["persist_declined"] += 1
            self._explain.record(
                "decline_persist" if declined else "keep_persist",
                site=site,
                policy=self._policy.name,
                F=case.reads,
                own=round(case.own_ms, 3),
                wall=round(case.wall_ms, 3),
                load=round(case.load_ms, 3),
                disk_share=round(case.disk_share, 3),
                W=round(case.disk_write_ms, 3),
                Rd=round(case.disk_read_ms, 3),
                store=round(case.store_ms, 3),
                saved=round(case.saved_ms, 3),
                rule="persisting costs more than the later reads save: fused into its readers"
                if declined
                else "the later reads save more than persisting costs: persisted",
            )
            return declined

    def persist_df(self, df, level, original, *, cache: bool = False):
        from pyspark import StorageLevel

        if mark_of(df, "_blaze_managed", False):
            return df
        blaze_level = is_blaze_level(level)
        persist = self.originals["DataFrame.persist"]
        if self._ignores_user_cache():
            self._count("user_cache_ignored")
            return df
        if self._observes_only() or not self._takes_call(blaze_level):
            if blaze_level:
                persist(df, StorageLevel.MEMORY_AND_DISK_DESER)
            elif cache:
                original(df)
            else:
                persist(df, StorageLevel.MEMORY_AND_DISK_DESER if level is None else level)
            managed = False
        elif not self._policy.caches:
            df.is_cached = False
            self._count("persist_ignored")
            return df
        else:
            # serialized: the columnar batches as bytes take a fraction of the memory the
            # deserialized level's estimates claim, and in a squeezed pool the deserialized
            # blocks left DataFrame aggregations no execution memory (UNABLE_TO_ACQUIRE_MEMORY)
            persist(df, storage_level(self._policy.jvm_level_name(), deserialized=False))
            df._blaze_managed = True
            managed = True
        rdd_id = self._bridge.dataframe_rdd_id(df, build=False)
        if rdd_id is not None:
            self._register(df, rdd_id, "dataframe", managed=managed)
        else:
            with self._lock:
                self._registry.token_of(df)  # its site: the program's frames, here
                self._unbuilt[id(df)] = (weakref.ref(df), managed)
        return df

    def register_built(self) -> None:
        """At a job's start, before its blocks (caller holds the lock): register the persisted
        DataFrames whose batches' RDD Spark has made since their ``persist`` — the action that
        submitted this job planned them. Asking at ``persist`` would build that RDD there, a
        few milliseconds per call the action does not save."""
        for key, (ref, managed) in list(self._unbuilt.items()):
            df = ref()
            rdd_id = None if df is None else self._bridge.dataframe_rdd_id(df, build=False)
            if df is None or rdd_id is not None:
                del self._unbuilt[key]
            if rdd_id is not None:
                self._register(df, rdd_id, "dataframe", managed=managed)

    def unpersist(self, obj, blocking, original):
        """The books let go before Spark's own unpersist runs: that posts Spark's event of
        it, and the event worker, handling it before the books had let go, would take it for
        an unpersist not applied here and wait for another event that never comes."""
        token = mark_of(obj, "_blaze_token")
        with self._lock:
            self._unbuilt.pop(id(obj), None)
            for dataset in self._registry.by_token(token):
                del self._registry.datasets[dataset.rdd_id]
                self._forget_unpersisted_here(dataset.rdd_id, "user_unpersist")
            if token is not None:
                self._registry.tracker.mark_unpersisted(token)
        obj._blaze_managed = False
        if not blocking and mark_of(obj, "_blaze_released", False) and not obj.is_cached:
            return obj  # autoUnpersist already did what Spark's own call would do again
        return original(obj, blocking)

    def auto_unpersist(self, token: int, why: str) -> None:
        """Unpersist a managed dataset the tracker predicts no use for (caller holds the lock)."""
        found = self._registry.by_token(token)
        dataset = found[0] if found else None
        if dataset is None or not dataset.managed:
            return
        obj = dataset.ref() if dataset.ref is not None else None
        if obj is not None:
            key = "RDD.unpersist" if dataset.kind == "rdd" else "DataFrame.unpersist"
            self.originals[key](obj, False)
            obj._blaze_managed = False
            # an RDD object is its JVM RDD: the program's own unpersist of it has nothing
            # left to do (a DataFrame's unpersist acts on its plan, which others may share)
            obj._blaze_released = dataset.kind == "rdd"
        else:
            self._bridge.unpersist_rdd(dataset.rdd_id)
        del self._registry.datasets[dataset.rdd_id]
        self._registry.tracker.mark_unpersisted(token)
        self._forget_unpersisted_here(dataset.rdd_id, "auto_unpersist")
        self._ledger.counters.decisions["auto_unpersist"] += 1
        self._explain.record(
            "auto_unpersist", rdd=dataset.rdd_id, kind=dataset.kind, site=dataset.site, rule=why
        )
        if dataset.kind == "dataframe":
            self._follow_rebuilt_dataframes()

    def _follow_rebuilt_dataframes(self) -> None:
        """Uncaching a DataFrame makes Spark rebuild, under a new RDD id, every cached plan
        containing it whose buffers are not loaded (one persisted and not computed yet): the
        books follow those to their new ids (caller holds the lock)."""
        for dataset in list(self._registry.datasets.values()):
            if dataset.kind != "dataframe" or self._ledger.book.cached_partitions(dataset.rdd_id):
                continue
            obj = dataset.ref() if dataset.ref is not None else None
            rdd_id = self._bridge.dataframe_rdd_id(obj) if obj is not None else None
            if rdd_id is not None and rdd_id != dataset.rdd_id:
                old = dataset.rdd_id
                self._registry.rekey(old, rdd_id)
                self._measurements.forget_rdd(old)
                self._engine.refresh(rdd_id)

    def _forget_unpersisted_here(self, rdd_id: int, reason: str) -> None:
        """An unpersist applied here: the books let go now, and Spark's event of it is due."""
        self._ledger.unpersist_applied(rdd_id)
        self.forget_rdd(rdd_id, reason)

    def on_unpersisted(self, rdd_id: int) -> None:
        """Spark's own event of an unpersist (the program's, the manager's or its cleaner's):
        the blocks go — unless this unpersist was applied here already and the program has
        persisted the RDD again since (its blocks now are the new level's) — and the ledger
        books the RDD's blocks again from now on."""
        applied_here = self._ledger.unpersist_reported(rdd_id)
        if not (applied_here and rdd_id in self._registry.datasets):
            self.forget_rdd(rdd_id, "user_unpersist")

    def forget_rdd(self, rdd_id: int, reason: str) -> None:
        """An RDD is no longer persisted: every book lets go of its blocks. One the program
        never registered (a local checkpoint, unpersisted by Spark's cleaner) cannot be stored
        again, so the ledger forgets its computed splits too."""
        self._measurements.forget_rdd(rdd_id)
        self._placement.forget(rdd_id)
        splits = self._ledger.book.cached_partitions(rdd_id)
        self._ledger.forget_rdd(rdd_id, reason)
        if rdd_id not in self._registry.token_by_rdd_id:
            self._ledger.forget_computed((rdd_id,))
        self._engine.forget(rdd_id, splits)
        if splits and self._prefetcher is not None:  # memory freed: MRD reads back
            self._prefetcher.run(f"rdd {rdd_id} unpersisted")
