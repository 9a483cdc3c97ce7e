"""Job boundaries: what the manager decides before and after each job (autoCache, unpersist).

Why here and synchronously: listener events arrive after the fact, but persisting a reused
dataset must happen before the job that computes it, and a dataset with no future use should
be gone before the next job fills memory. So the wrapped PySpark entry points
(:mod:`blaze.hooks`) call :meth:`JobBoundaries.before_job` / ``after_job`` around every
RDD action, and ``after_dataframe_job`` after DataFrame actions.
Which datasets a job reads comes from the Python derivation chain (pipelined steps the JVM
never sees) plus one walk of the JVM lineage; DataFrame jobs are seen through the listener (the
stages of a job that reads a cached DataFrame list its cached RDD).

A superseded DataFrame generation is found when the job reading its successor starts, but it
is unpersisted only after the action, on the program's thread: Spark's ``uncacheQuery``
rebuilds every cached plan containing the uncached one whose buffers are not loaded yet — the
generation the job is computing, or one the program has just persisted — under a new RDD id,
dropping what was stored and leaving the manager's books on the old id. Right after an action
the generations it computed are loaded, and the program has persisted nothing new since.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable

from blaze.config import BlazeConfig
from blaze.engine import Engine
from blaze.explain import DecisionLog
from blaze.ledger import Ledger
from blaze.persistence import Persistence
from blaze.policies import ManagerPolicy
from blaze.registry import Registry, mark_of, worth_auto_caching
from lineage.events import JobRun
from lineage.walk import walk

__all__ = ["JobBoundaries"]

LINEAGE_WALK_LIMIT = 400  # JVM RDDs visited per job before the walk gives up
BOUNDARY_SYNC_S = 30.0
# after a DataFrame action, how long to wait for its last job's start to be handled before
# waiting for every event instead (events dropped on the way, a manager far behind)
JOB_START_WAIT_S = 2.0


class JobBoundaries:
    """autoCache and autoUnpersist, at job boundaries. ``sync(timeout_s)`` waits until the
    manager has handled every Spark event so far."""

    def __init__(
        self,
        *,
        registry: Registry,
        persistence: Persistence,
        ledger: Ledger,
        engine: Engine,
        bridge,
        policy: ManagerPolicy,
        config: BlazeConfig,
        explain: DecisionLog,
        lock,
        sync: Callable[[float], None],
        on_error: Callable[[str, Exception], None],
    ) -> None:
        self._registry = registry
        self._persistence = persistence
        self._ledger = ledger
        self._engine = engine
        self._bridge = bridge
        self._policy = policy
        self._config = config
        self._explain = explain
        self._lock = lock
        self._sync = sync
        self._on_error = on_error
        # DataFrame generations found superseded, unpersisted at the next job boundary
        self._superseded: set[int] = set()
        self._job_started = threading.Condition()  # the newest job whose start was handled
        self._last_started_job = -1

    def before_derive(self, prev) -> None:
        """autoCache at derivation time: persist ``prev`` if its site is known to be reused."""
        if not (self._policy.manages and self._config.auto_cache) or prev.is_cached:
            return
        token = mark_of(prev, "_blaze_token")
        if token is None:
            return
        try:
            with self._lock:
                use = self._registry.tracker.datasets.get(token)
                reused = use is not None and self._registry.tracker.is_reused_site(use.site)
            if reused and worth_auto_caching(prev):
                self._auto_cache(prev, token, "site reused (derivation)")
        except Exception as exc:
            self._on_error("before_derive", exc)

    def _auto_cache(self, obj, token: int, rule: str) -> None:
        self._persistence.persist_rdd(
            obj, None, self._persistence.originals["RDD.persist"], auto=True
        )
        if not mark_of(obj, "_blaze_managed", False):
            return  # declined: persisting it costs more than it saves (logged as such)
        with self._lock:
            self._ledger.counters.decisions["auto_cache"] += 1
            use = self._registry.tracker.datasets.get(token)
            self._explain.record(
                "auto_cache",
                rdd=obj.id(),
                kind="rdd",
                site=use.site if use else None,
                uses=use.uses if use else None,
                rule=rule,
            )

    def before_job(self, rdd) -> None:
        if not self._policy.manages:
            return
        try:
            # let the previous jobs' block events land first: which datasets are fully
            # cached decides how far back this job reads, so the choice must not race them
            self._sync(BOUNDARY_SYNC_S)
            with self._lock:
                used, parents, from_cache = self._datasets_used_by(rdd)
                chosen = self._registry.tracker.start_job(used, parents, from_cache)
                self._persistence.keep_unread_in_memory_only(used)  # W of their partitions
                self._engine.invalidate_references()
            if not self._config.auto_cache:
                return
            for token in chosen:
                obj = self._registry.object_of(token)
                if obj is None or obj.is_cached or not worth_auto_caching(obj):
                    continue
                self._auto_cache(obj, token, "read by a second job")
        except Exception as exc:  # a bookkeeping failure must never fail the user's job
            self._on_error("before_job", exc)

    def after_job(self) -> None:
        if not self._policy.manages:
            return
        try:
            with self._lock:
                tokens = self._registry.tracker.finish_job(
                    auto_unpersist=self._config.auto_unpersist
                )
                for token in tokens:
                    self._persistence.auto_unpersist(token, "no future use predicted after the job")
                self._after_action()
        except Exception as exc:
            self._on_error("after_job", exc)

    def after_dataframe_job(self) -> None:
        """After a DataFrame action, before the program goes on: the generations its jobs
        superseded are unpersisted while no newer one waits to be computed.

        What they superseded is known once the start of the action's last job is handled;
        the rest of its events (tens of kB of stage descriptions for a long DataFrame plan)
        are handled while the program goes on, as Spark's own listeners do.
        """
        if not self._policy.manages:
            return
        try:
            last_job = self._bridge.last_job_id()
            if last_job is None or not self._wait_for_job_start(last_job, JOB_START_WAIT_S):
                self._sync(BOUNDARY_SYNC_S)
            with self._lock:
                self._after_action()
        except Exception as exc:
            self._on_error("after_dataframe_job", exc)

    def _after_action(self) -> None:
        """What the end of any action lets go (caller holds the lock): the generations its
        jobs superseded, and the records of datasets the program can no longer reach."""
        for token in sorted(self._superseded):
            self._persistence.auto_unpersist(token, "superseded by a newer generation of its site")
        self._superseded.clear()
        self._ledger.forget_computed(self._registry.forget_released())
        self._engine.invalidate_references()

    def _wait_for_job_start(self, job_id: int, timeout_s: float) -> bool:
        with self._job_started:
            return self._job_started.wait_for(
                lambda: self._last_started_job >= job_id, timeout=timeout_s
            )

    def on_job_started(self, job: JobRun) -> None:
        """Listener side (worker thread): count the cached DataFrames a job reads.

        A stage lists every narrow ancestor of its RDDs, cached or not; the job reads a
        cached DataFrame only where the walk down from the stage's last RDDs reaches it
        before any other fully cached dataset (a cached descendant shadows its ancestors).
        """
        try:
            self._record_dataframe_reads(job)
        finally:
            with self._job_started:
                self._last_started_job = max(self._last_started_job, job.job_id)
                self._job_started.notify_all()

    def _record_dataframe_reads(self, job: JobRun) -> None:
        if not self._policy.manages or not job.stages:
            return
        tokens: set[int] = set()
        parents: dict[int, set[int]] = defaultdict(set)
        for stage in job.stages:
            tokens |= self._dataframes_read(stage, parents)
        if not tokens:
            return
        dead = self._registry.tracker.record_reads(
            tokens, parents=parents, auto_unpersist=self._config.auto_unpersist
        )
        self._superseded |= set(dead)  # unpersisted after the job (module docstring)
        self._engine.invalidate_references()

    def on_job_ended(self) -> None:
        """Listener side, after the job's end was enforced: the lineage and the cost model
        forget what finished, keeping the datasets the registry holds and any RDD with a
        block in the books (a program of thousands of short jobs keeps its live part only)."""

        def held(rdd_id: int) -> bool:
            return rdd_id in self._registry.datasets or bool(
                self._ledger.book.cached_partitions(rdd_id)
            )

        self._engine.retire_finished(held)

    def _dataframes_read(self, stage, parents: dict[int, set[int]]) -> set[int]:
        """Tokens of the cached DataFrames ``stage`` reads; ``parents`` gains, for each, the
        nearest DataFrames below it in the stage (what it is computed from, as the Python
        chain tells for RDDs), so iteration state is recognised on DataFrames too."""
        nodes = {n.rdd_id: n for n in stage.rdds}
        listed_as_parent = {p for n in stage.rdds for p in n.parent_ids}
        tokens: set[int] = set()

        def below(rdd_id: int) -> tuple[int, ...]:
            node = nodes.get(rdd_id)
            return node.parent_ids if node is not None else ()

        def registered_token(rdd_id: int) -> int | None:
            dataset = self._registry.datasets.get(rdd_id)
            return dataset.token if dataset is not None else None

        def dataframe_token(rdd_id: int) -> int | None:
            dataset = self._registry.datasets.get(rdd_id)
            return dataset.token if dataset is not None and dataset.kind == "dataframe" else None

        def read_through(rdd_id: int) -> tuple[int, ...]:
            if rdd_id not in self._registry.datasets:
                return below(rdd_id)
            token = dataframe_token(rdd_id)
            if token is not None:
                tokens.add(token)
                parents[token] |= _nearest_datasets(below(rdd_id), below, registered_token)
            node = nodes.get(rdd_id)
            partitions = node.num_partitions if node is not None else 1
            if len(self._ledger.book.cached_partitions(rdd_id)) >= max(partitions, 1):
                return ()  # read from the cache: its ancestors are not read
            return below(rdd_id)

        sinks = [rdd_id for rdd_id in nodes if rdd_id not in listed_as_parent]
        for _ in walk(sinks, read_through):
            pass
        return tokens

    # ---- which datasets a job reads ---------------------------------------------------------
    def _datasets_used_by(self, rdd) -> tuple[set[int], dict[int, set[int]], set[int]]:
        """Tokens of the datasets in the lineage of a job on ``rdd``, their derivation edges,
        and those of them the job reads from the cache alone (every partition cached: the
        walk listed their JVM RDD without parents)."""
        cached_counts = self._ledger.book.cached_partition_counts()
        graph = self._bridge.lineage(rdd, cached_counts, LINEAGE_WALK_LIMIT)
        used: set[int] = set()
        parents: dict[int, set[int]] = defaultdict(set)
        start = {mark_of(rdd, "_blaze_token")}
        start.update(self._registry.token_by_rdd_id.get(rdd_id) for rdd_id in graph)
        start.discard(None)
        from_cache = {
            self._registry.token_by_rdd_id.get(rdd_id)
            for rdd_id, rdd_parents in graph.items()
            if not rdd_parents and cached_counts.get(rdd_id, 0) > 0
        }
        from_cache.discard(None)
        # Python-side derivation (pipelined steps the JVM never sees), from the steps' records:
        # a step a library call made and dropped still leads to the program's dataset
        records = self._registry.tracker.datasets
        for first in start:
            token = first
            while token in records:
                used.add(token)
                use = records[token]
                if use.prev is None or (use.persisted and token != first):
                    break
                parents[token].add(use.prev)
                if use.prev in used:
                    break
                token = use.prev
        # JVM-side derivation between known datasets, through unknown intermediate RDDs
        for rdd_id in graph:
            token = self._registry.token_by_rdd_id.get(rdd_id)
            use = records.get(token) if token is not None else None
            if token is None or (use is not None and use.prev in records):
                # a pipelined step's JVM parent is the end of its Python chain: the chain
                # walked above says which datasets lie between (an edge straight to the end
                # would read as the job reaching it without going through them)
                continue
            parents[token] |= _nearest_datasets(
                graph[rdd_id],
                lambda parent: graph.get(parent, ()),
                self._registry.token_by_rdd_id.get,
                own=token,
            )
        return used, parents, from_cache


def _nearest_datasets(
    starts: Iterable[int],
    parents_of: Callable[[int], Iterable[int]],
    token_of: Callable[[int], int | None],
    *,
    own: int | None = None,
) -> set[int]:
    """Tokens of the first datasets met going up from ``starts`` through RDDs of no dataset
    (or of ``own``, the dataset whose parents these are): the datasets it is derived from."""
    found: set[int] = set()

    def up(rdd_id: int) -> Iterable[int]:
        token = token_of(rdd_id)
        if token is not None and token != own:
            found.add(token)
            return ()
        return parents_of(rdd_id)

    for _ in walk(starts, up):
        pass
    return found
