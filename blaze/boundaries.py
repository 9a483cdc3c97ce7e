"""Job boundaries: what the manager decides before and after each job (autoCache, unpersist).

Why here and synchronously: listener events arrive after the fact, but persisting a reused
dataset must happen before the job that computes it, and a dataset with no future use should
be gone before the next job fills memory. So the wrapped PySpark entry points
(:mod:`blaze.hooks`) call :meth:`JobBoundaryMixin._before_job` / ``_after_job`` around every
RDD action, and ``_before_dataframe_job`` before DataFrame actions. Which datasets a job reads
comes from the Python derivation chain (pipelined steps the JVM never sees) plus one walk of
the JVM lineage; DataFrame jobs are seen through the listener (the stages of a job that reads
a cached DataFrame list its cached RDD).
"""

from __future__ import annotations

from collections import defaultdict

from blaze.registry import thin_over_cache
from lineage.events import JobRun
from lineage.walk import walk

__all__ = ["JobBoundaryMixin"]

LINEAGE_WALK_LIMIT = 400  # JVM RDDs visited per job before the walk gives up
BOUNDARY_SYNC_S = 30.0


class JobBoundaryMixin:
    """autoCache and autoUnpersist of :class:`BlazeManager`, at job boundaries."""

    def _before_derive(self, prev) -> None:
        """autoCache at derivation time: persist ``prev`` if its site is known to be reused."""
        if not (self.policy.manages and self.config.auto_cache) or prev.is_cached:
            return
        if thin_over_cache(prev):
            return
        token = getattr(prev, "_blaze_token", None)
        if token is None:
            return
        try:
            with self._lock:
                use = self._tracker.datasets.get(token)
                reused = use is not None and self._tracker.is_reused_site(use.site)
            if reused:
                self._auto_cache(prev, token, "site reused (derivation)")
        except Exception as exc:
            self._count_error("before_derive", exc)

    def _auto_cache(self, obj, token: int, rule: str) -> None:
        self._persist_rdd(obj, None, self._originals["RDD.persist"], auto=True)
        with self._lock:
            self._ledger.counters.decisions["auto_cache"] += 1
            use = self._tracker.datasets.get(token)
            self._explain.record(
                "auto_cache",
                rdd=obj.id(),
                kind="rdd",
                site=use.site if use else None,
                uses=use.uses if use else None,
                rule=rule,
            )

    def _before_job(self, rdd) -> None:
        if not self.policy.manages:
            return
        try:
            # let the previous jobs' block events land first: which datasets are fully
            # cached decides how far back this job reads, so the choice must not race them
            self.sync(timeout_s=BOUNDARY_SYNC_S)
            with self._lock:
                used, parents = self._datasets_used_by(rdd)
                chosen = self._tracker.start_job(used, parents)
                self._engine.invalidate_references()
            if not self.config.auto_cache:
                return
            for token in chosen:
                ref = self._objects.get(token)
                obj = ref() if ref is not None else None
                if obj is None or obj.is_cached or thin_over_cache(obj):
                    continue
                self._auto_cache(obj, token, "read by a second job")
        except Exception as exc:  # a bookkeeping failure must never fail the user's job
            self._count_error("before_job", exc)

    def _after_job(self) -> None:
        if not self.policy.manages:
            return
        try:
            with self._lock:
                tokens = self._tracker.finish_job(auto_unpersist=self.config.auto_unpersist)
                for token in tokens:
                    self._auto_unpersist(token, "no future use predicted after the job")
                self._forget_released()
                self._engine.invalidate_references()
        except Exception as exc:
            self._count_error("after_job", exc)

    def _before_dataframe_job(self) -> None:
        """A DataFrame action: let earlier jobs' events (and their unpersists) land first."""
        if not self.policy.manages:
            return
        try:
            self.sync(timeout_s=BOUNDARY_SYNC_S)
        except Exception as exc:
            self._count_error("before_dataframe_job", exc)

    def _on_job_started(self, job: JobRun) -> None:
        """Listener side (worker thread): count the cached DataFrames a job reads.

        A stage lists every narrow ancestor of its RDDs, cached or not; the job reads a
        cached DataFrame only where the walk down from the stage's last RDDs reaches it
        before any other fully cached dataset (a cached descendant shadows its ancestors).
        """
        if not self.policy.manages or not job.stages:
            return
        tokens: set[int] = set()
        for stage in job.stages:
            tokens |= self._dataframes_read(stage)
        if not tokens:
            return
        dead = self._tracker.record_reads(tokens, auto_unpersist=self.config.auto_unpersist)
        for token in dead:
            self._auto_unpersist(token, "superseded by a newer generation of its site")
        self._engine.invalidate_references()

    def _dataframes_read(self, stage) -> set[int]:
        nodes = {n.rdd_id: n for n in stage.rdds}
        listed_as_parent = {p for n in stage.rdds for p in n.parent_ids}
        tokens: set[int] = set()

        def read_through(rdd_id: int) -> tuple[int, ...]:
            dataset = self._datasets.get(rdd_id)
            node = nodes.get(rdd_id)
            if dataset is not None:
                if dataset.kind == "dataframe":
                    tokens.add(dataset.token)
                partitions = node.num_partitions if node is not None else 1
                if len(self._ledger.cached_partitions(rdd_id)) >= max(partitions, 1):
                    return ()  # read from the cache: its ancestors are not read
            return node.parent_ids if node is not None else ()

        sinks = [rdd_id for rdd_id in nodes if rdd_id not in listed_as_parent]
        for _ in walk(sinks, read_through):
            pass
        return tokens

    # ---- which datasets a job reads ---------------------------------------------------------
    def _resolve_jvm_ids(self) -> None:
        pending = []
        for token in self._unresolved:
            ref = self._objects.get(token)
            obj = ref() if ref is not None else None
            if obj is None:
                continue
            rdd_id = getattr(obj, "_id", None)
            if rdd_id is None:
                pending.append(token)
            else:
                self._token_by_rdd_id.setdefault(int(rdd_id), token)
        self._unresolved = pending

    def _datasets_used_by(self, rdd) -> tuple[set[int], dict[int, set[int]]]:
        """Tokens of the datasets a job on ``rdd`` reads, and their derivation edges."""
        self._resolve_jvm_ids()

        def fully_cached(rdd_id: int, num_partitions: int) -> bool:
            return len(self._ledger.cached_partitions(rdd_id)) >= num_partitions

        graph = self._bridge.lineage(rdd, fully_cached, LINEAGE_WALK_LIMIT)
        self._resolve_jvm_ids()
        used: set[int] = set()
        parents: dict[int, set[int]] = defaultdict(set)
        start = [rdd]
        for rdd_id in graph:
            token = self._token_by_rdd_id.get(rdd_id)
            if token is None:
                continue
            used.add(token)
            ref = self._objects.get(token)
            obj = ref() if ref is not None else None
            if obj is not None:
                start.append(obj)
        # Python-side derivation (pipelined RDDs the JVM never sees)
        for obj in start:
            node = obj
            while node is not None:
                token = getattr(node, "_blaze_token", None)
                if token is None:
                    break
                used.add(token)
                prev = getattr(node, "prev", None)
                if prev is None or (node.is_cached and node is not obj):
                    break
                prev_token = getattr(prev, "_blaze_token", None)
                if prev_token is not None:
                    parents[token].add(prev_token)
                if prev_token in used:
                    break
                node = prev
        # JVM-side derivation between known datasets, through unknown intermediate RDDs
        for rdd_id in graph:
            token = self._token_by_rdd_id.get(rdd_id)
            if token is None:
                continue

            def through_unknown(parent: int, token: int = token) -> tuple[int, ...]:
                parent_token = self._token_by_rdd_id.get(parent)
                if parent_token is not None and parent_token != token:
                    parents[token].add(parent_token)
                    return ()
                return graph.get(parent, ())

            for _ in walk(graph[rdd_id], through_unknown):
                pass
        return used, parents
