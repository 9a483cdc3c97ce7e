"""The cache manager: decides, for every cached partition, memory, disk or nothing.

``blaze.attach(spark, policy=..., memory_budget=...)`` returns a :class:`BlazeManager` bound
to the SparkContext. Three inputs drive it:

1. **Block events** (``lineage.listener.LineageListener``, its own bus queue): each time a
   managed partition enters memory on an executor (computed, or promoted back from disk by a
   read), the policy (``costmodel.policies``) is asked where it goes and which residents of
   that executor make room; the decision is enforced at once (:mod:`blaze._jvm`): spill to
   disk (local mode: Spark's own ``dropFromMemory``), drop (``removeBlock``; the next use
   recomputes exactly that partition), keep. So managed memory per executor stays within the
   budget (plus, transiently, the block being decided) and Spark's LRU never has to choose.
2. **Job boundaries** (wrapped PySpark entry points, :mod:`blaze.hooks`): before a job, the
   datasets it will read are counted (:mod:`blaze.tracker`) and reused ones are persisted
   (autoCache); after it, managed datasets with no predicted future use are unpersisted.
3. **Spark's storage status**, read at every job end: the ledger is corrected from it, so
   lost or reordered events, or a block removed by someone else, never leave the manager
   believing a partition is cached when it is not (a vanished block is treated as dropped).

Promotion disk → memory happens when a spilled partition is read: Spark copies it back into
memory, the manager sees it enter memory and asks the policy again (Blaze keeps it only when
it fits or its cost ranks above the lowest 30 % in memory; otherwise its memory copy is
dropped and the disk copy stays).

Policies: ``spark`` (program's own levels, Spark's LRU; the manager only observes and
reports), ``none`` (persist calls are ignored), ``mem_only``/``mem_disk`` (LRU within the
budget, dropping / spilling), ``lrc``, ``mrd``, ``blaze`` (cost-based, DESIGN §3).

Cluster mode (``local-cluster``, standalone, YARN...): block status, removal and unpersist
work through the driver's BlockManagerMaster; Spark has no remote "move this block to disk"
command, so a spill decision degrades to a drop there (counted as
``decisions["spill_degraded_to_drop"]``). The budget applies to each executor separately.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import queue
import sys
import threading
import weakref
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from blaze import hooks, sparklog
from blaze._jvm import JvmBridge
from blaze.config import PREFIX, BlazeConfig
from blaze.ledger import BlockRecord, Ledger
from blaze.levels import is_blaze_level, storage_level
from blaze.policies import Candidate, ManagerPolicy, get_manager_policy
from blaze.report_file import publish_report
from blaze.tracker import UsageTracker
from blaze_errors import BlazeError, ConfigError
from costmodel.predict import Predictors
from costmodel.types import MIB, Location
from lineage.events import BlockEvent, JobRun, RddUnpersisted, StageRun, TaskRun

__all__ = ["BlazeManager", "ManagerError", "active_manager", "attach"]

log = logging.getLogger("blaze")

# keyword arguments of attach() -> the spark.blaze.* key they set
KEYWORDS = {
    "policy": "policy",
    "memory_budget": "memoryBudget",
    "auto_cache": "autoCache",
    "auto_unpersist": "autoUnpersist",
    "profile_mode": "profile.mode",
    "profile_path": "profile.path",
    "disk_write_ms_per_mib": "disk.writeMsPerMiB",
    "disk_read_ms_per_mib": "disk.readMsPerMiB",
    "log_level": "logLevel",
}
LINEAGE_WALK_LIMIT = 400  # JVM RDDs visited per job before the walk gives up
SYNC_TIMEOUT_S = 60.0

_PYSPARK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__import__("pyspark").__file__)))
_BLAZE_DIR = os.path.dirname(os.path.abspath(__file__))
_active: dict[int, BlazeManager] = {}
_active_lock = threading.Lock()


class ManagerError(BlazeError, RuntimeError):
    """The manager cannot attach (already attached, Spark stopped, bad profile...)."""


@dataclass
class ManagedDataset:
    """A persisted dataset the manager answers for (an RDD or a DataFrame's cached RDD)."""

    rdd_id: int
    token: int
    site: str
    kind: str  # "rdd" | "dataframe"
    ref: Any  # weakref to the Python object, or None
    managed: bool  # the manager may move/drop/unpersist it (False: observe only)


SITE_FRAMES = 3  # user frames that name a dataset's site


def _user_site() -> str:
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


def _thin_over_cache(rdd) -> bool:
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


def active_manager(sc) -> BlazeManager | None:
    """The manager attached to ``sc`` (a SparkContext or SparkSession), if any."""
    sc = getattr(sc, "sparkContext", sc)
    with _active_lock:
        return _active.get(id(sc))


def _merge_overrides(conf: dict[str, str], policy, overrides: Mapping[str, Any]) -> dict:
    merged = dict(conf)
    if policy is not None:
        merged[PREFIX + "policy"] = str(policy)
    for name, value in overrides.items():
        if name.startswith(PREFIX):
            key = name
        elif name in KEYWORDS:
            key = PREFIX + KEYWORDS[name]
        else:
            known = ", ".join(sorted(KEYWORDS))
            raise TypeError(f"attach() got an unknown option {name!r} (known: {known})")
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, bool):
            merged[key] = "true" if value else "false"
        else:
            merged[key] = str(value)
    return merged


def attach(spark, policy: str | None = None, **overrides) -> BlazeManager:
    """Attach a cache manager to ``spark`` (a SparkSession or SparkContext) and return it.

    ``policy`` defaults to ``spark.blaze.policy`` of the context's conf; ``overrides`` are
    keyword options (``memory_budget="64m"``, ``auto_cache=False``, ...) or full
    ``spark.blaze.*`` keys. Bad input (unknown policy, a budget ≤ 0 or above Spark's storage
    memory, a profile of another application) raises one :class:`BlazeError` here.
    """
    sc = getattr(spark, "sparkContext", spark)
    if not hasattr(sc, "_jsc") or sc._jsc is None:
        raise ManagerError("attach() needs a running SparkSession or SparkContext")
    session = spark if hasattr(spark, "sparkContext") else None
    existing = active_manager(sc)
    if existing is not None:
        raise ManagerError(
            f"a Blaze manager (policy {existing.policy.name}) is already attached to this "
            "SparkContext; call its detach() first"
        )
    bridge = JvmBridge(sc)
    conf = {k: v for k, v in bridge.conf().items() if k.startswith(PREFIX)}
    config = BlazeConfig.from_conf(_merge_overrides(conf, policy, overrides))
    manager = BlazeManager(sc, session, config, bridge)
    manager._start()
    return manager


class BlazeManager:
    """One SparkContext's cache manager. Create with :func:`blaze.attach`."""

    def __init__(self, sc, session, config: BlazeConfig, bridge: JvmBridge) -> None:
        self._sc = sc
        self._session = session
        self.config = config
        self.policy: ManagerPolicy = get_manager_policy(config.policy)
        self._bridge = bridge
        self._lock = threading.RLock()
        self._ledger = Ledger()
        self._tracker = UsageTracker()
        self._tokens = itertools.count(1)
        self._objects: dict[int, weakref.ref] = {}
        self._unresolved: list[int] = []
        self._jvm_to_token: dict[int, int] = {}
        self._datasets: dict[int, ManagedDataset] = {}  # by JVM rdd id
        self._compute_ms: dict[tuple[int, int], float] = {}
        self._site_compute_ms: dict[str, list[float]] = defaultdict(list)
        self._site_sizes: dict[str, dict[int, int]] = defaultdict(dict)
        self._predictors = Predictors()
        self._observed: set[tuple[int, int]] = set()
        self._errors: dict[str, int] = defaultdict(int)
        self._deferred: dict[tuple[int, int, str], str] = {}  # spills waiting for a lock
        self._last_error: str | None = None
        self._events: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None
        self._listener = None
        self._unsubscribe = None
        self._originals: dict[str, Any] = {}
        self._attached = False
        self.memory_budget = 0
        self.storage_memory = 0
        self.disk_cost = None

    # ---- lifecycle ------------------------------------------------------------------------
    def _start(self) -> None:
        from blaze.profile import load_profile

        self._configure_logging()
        self.storage_memory = self._storage_memory()
        budget = self.config.memory_budget
        if budget is None:
            budget = self.storage_memory
        elif budget > self.storage_memory:
            raise ConfigError(
                f"{PREFIX}memoryBudget={budget} bytes exceeds Spark's storage memory of "
                f"{self.storage_memory} bytes per executor (raise spark.executor.memory / "
                "spark.driver.memory or lower the budget)"
            )
        self.memory_budget = int(budget)
        if self.config.profile_mode == "use":
            profile = load_profile(self.config.profile_path, self._bridge.app_name)
            self._tracker = UsageTracker(
                profile_uses={s: v["uses"] for s, v in profile["sites"].items()},
                # sites whose datasets were cached then, not every ancestor of them that a
                # reused dataset's jobs also read (those need no cache of their own)
                profile_reused=[
                    s for s, v in profile["sites"].items() if v.get("cached", v.get("reused"))
                ],
            )
        self.disk_cost = self._disk_cost()
        from lineage.listener import LineageListener

        with _active_lock:
            _active[id(self._sc)] = self
        self._attached = True
        try:
            self._listener = LineageListener.attach(self._sc)
            self._unsubscribe = self._listener.subscribe(self._events.put)
            self._worker = threading.Thread(target=self._work, name="blaze-manager", daemon=True)
            self._worker.start()
            self._originals = hooks.install(self)
        except BaseException:
            self.detach()  # undo whatever part of the attachment happened
            raise
        atexit.register(self.detach)
        log.info(
            "blaze: attached policy=%s budget=%d bytes/executor (storage memory %d) mode=%s",
            self.policy.name,
            self.memory_budget,
            self.storage_memory,
            "local" if self._bridge.is_local else "cluster",
        )

    def _configure_logging(self) -> None:
        sparklog.install(log, self._bridge.log4j(log.name), self.config.log_level)

    def _storage_memory(self) -> int:
        statuses = self._bridge.storage_status()
        executors = [s for s in statuses if s.executor_id != "driver"] or statuses
        if not executors:
            raise ManagerError("Spark reports no block manager; is the SparkContext running?")
        return min(s.max_memory for s in executors)

    def _disk_cost(self):
        from costmodel.disk import disk_cost_from_config

        return disk_cost_from_config(
            self.config.disk_write_ms_per_mib, self.config.disk_read_ms_per_mib
        )

    @property
    def attached(self) -> bool:
        return self._attached

    def detach(self) -> None:
        """Stop managing: unregister the listener, restore PySpark's methods. Idempotent."""
        with _active_lock:
            if not self._attached:
                return
            self._attached = False
            _active.pop(id(self._sc), None)
        atexit.unregister(self.detach)
        hooks.uninstall()
        try:
            if not self._bridge.is_stopped():
                self.sync(timeout_s=10)
        except Exception as exc:
            self._count_error("detach_sync", exc)
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._listener is not None:
            self._listener.detach()
        self._events.put(None)
        if self._worker is not None:
            self._worker.join(5)
        if self.config.profile_mode == "record":
            from blaze.profile import write_profile

            try:
                write_profile(
                    self.config.profile_path, self._bridge.app_name, self._profile_sites()
                )
            except Exception as exc:
                self._count_error("profile_write", exc)
                log.warning("blaze: could not write the profile: %s", exc)
        publish_report(log, self.report(sync=False), self.config.report_path)

    def _on_spark_stop(self, sc) -> None:
        if sc is self._sc:
            self.detach()

    def sync(self, timeout_s: float = SYNC_TIMEOUT_S) -> None:
        """Wait until every Spark event so far is handled and every decision enforced."""
        if self._listener is not None and self._listener.attached:
            self._listener.wait_until_empty(timeout_s)
        done = threading.Event()
        self._events.put(done)
        if not done.wait(timeout_s):
            raise TimeoutError(f"the Blaze manager was still busy after {timeout_s} s")

    # ---- the event worker ------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            item = self._events.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                with self._lock:
                    self._handle(item)
            except Exception as exc:  # never let one event stop the manager
                self._count_error(type(item).__name__, exc)

    def _handle(self, event) -> None:
        if self._deferred and isinstance(event, (TaskRun, JobRun)):
            self._retry_deferred()
        if isinstance(event, BlockEvent):
            self._on_block(event)
        elif isinstance(event, TaskRun):
            self._on_task(event)
        elif isinstance(event, StageRun):
            if not event.completed:  # the submitted event (see StageRun.completed)
                self._ledger.apply_stage(event)
        elif isinstance(event, JobRun):
            if event.succeeded is not None:
                self._resync()
        elif isinstance(event, RddUnpersisted):
            self._ledger.forget_rdd(event.rdd_id, "user_unpersist")

    def _on_block(self, event: BlockEvent) -> None:
        change = self._ledger.apply_block(event)
        if change is None:
            return
        dataset = self._datasets.get(change.key[0])
        if dataset is None:
            return
        if change.entered_memory and change.disk_size == 0:
            self._site_sizes[dataset.site][change.key[1]] = change.memory_size
            if change.key not in self._observed:
                self._observed.add(change.key)
                try:
                    self._predictors.observe_rdd(
                        change.key[0], dataset.site, change.key[1], change.memory_size
                    )
                except Exception as exc:
                    self._count_error("predict", exc)
        if change.entered_memory and dataset.managed and self.policy.acts:
            self._admit(change.key, change.executor_id)

    def _on_task(self, task: TaskRun) -> None:
        for key, outcome in self._ledger.apply_task(task):
            if outcome == "miss":
                self._compute_ms[key] = float(task.run_time_ms)
                dataset = self._datasets.get(key[0])
                if dataset is not None:
                    samples = self._site_compute_ms[dataset.site]
                    samples.append(float(task.run_time_ms))
                    del samples[:-64]

    # ---- decisions ---------------------------------------------------------------------------
    def _managed_ids(self) -> set[int]:
        return {rid for rid, d in self._datasets.items() if d.managed}

    def _recompute_ms(self, key: tuple[int, int], write_ms: float, read_ms: float) -> float:
        known = self._compute_ms.get(key)
        if known is not None:
            return known
        same_rdd = [v for k, v in self._compute_ms.items() if k[0] == key[0]]
        if same_rdd:
            return sum(same_rdd) / len(same_rdd)
        dataset = self._datasets.get(key[0])
        samples = self._site_compute_ms.get(dataset.site) if dataset else None
        if samples:
            return sum(samples) / len(samples)
        # nothing measured yet: assume recomputing costs twice a disk round trip, so an
        # unknown partition is kept (memory if it fits, else disk) rather than dropped
        return 2.0 * (write_ms + read_ms) + 1.0

    def _candidate(self, record: BlockRecord, *, on_disk: bool = False) -> Candidate:
        size = record.memory_size or record.disk_size
        mib = size / MIB
        write_ms = mib * self.disk_cost.write_ms_per_mib
        read_ms = mib * self.disk_cost.read_ms_per_mib
        dataset = self._datasets.get(record.rdd_id)
        future = self._tracker.future_uses(dataset.token) if dataset else 1.0
        return Candidate(
            key=record.key,
            size=size,
            last_access=record.last_access,
            future_refs=future,
            recompute_ms=self._recompute_ms(record.key, write_ms, read_ms),
            write_ms=write_ms,
            read_ms=read_ms,
            on_disk=on_disk,
        )

    def _admit(self, key: tuple[int, int], executor: str) -> None:
        slot = (key[0], key[1], executor)
        record = self._ledger.blocks.get(slot)
        if record is None or not record.memory_size:
            return
        managed = self._managed_ids()
        in_memory = self._ledger.in_memory(executor)
        total = sum(r.memory_size for r in in_memory)
        self._ledger.note_over_budget(total - record.memory_size - self.memory_budget)
        unmanaged = sum(r.memory_size for r in in_memory if r.rdd_id not in managed)
        resident = [self._candidate(r) for r in in_memory if r.rdd_id in managed and r.key != key]
        incoming = self._candidate(record, on_disk=record.disk_size > 0)
        budget = max(self.memory_budget - unmanaged, 0)
        decision = self.policy.admit(incoming, resident, budget)
        counters = self._ledger.counters
        counters.decisions[f"admit_{str(decision.admit_to).lower()}"] += 1
        for victim, where in decision.victims:
            self._evict((victim[0], victim[1], executor), where, "evicted")
        if decision.admit_to != Location.MEMORY:
            self._evict(slot, decision.admit_to, "not_admitted")

    def _evict(self, slot: tuple[int, int, str], where: Location, why: str) -> None:
        rdd_id, split, _ = slot
        counters = self._ledger.counters
        record = self._ledger.blocks.get(slot)
        if record is None or not record.memory_size:
            return
        if where == Location.DISK and self.policy.spills:
            # also when a disk copy exists (a promoted block): drop only the memory copy
            outcome = self._bridge.spill_to_disk(rdd_id, split)
            if outcome == "locked":  # a task is still reading it: retry at the next event
                self._deferred[slot] = why
                counters.decisions["spill_deferred"] += 1
                return
            self._deferred.pop(slot, None)
            if outcome == "not_in_memory":  # a stale event: Spark holds no memory copy
                self._ledger.mark_spilled(slot)
                counters.decisions["stale_memory_event"] += 1
                return
            if outcome == "spilled":
                self._ledger.mark_spilled(slot)
                counters.decisions["spill_to_disk"] += 1
                counters.evictions_by_reason[f"{why}_to_disk"] += 1
                return
            counters.decisions["spill_degraded_to_drop"] += 1
        self._deferred.pop(slot, None)
        self._bridge.remove_block(rdd_id, split)
        self._ledger.mark_dropped(slot)
        counters.decisions["drop"] += 1
        counters.evictions_by_reason[f"{why}_dropped"] += 1

    def _retry_deferred(self) -> None:
        for slot, why in list(self._deferred.items()):
            self._evict(slot, Location.DISK, why)

    def _resync(self) -> None:
        truth = [
            (b.rdd_id, b.split_index, b.executor_id, b.memory_size, b.disk_size)
            for status in self._bridge.storage_status()
            for b in status.blocks
        ]
        self._ledger.resync(truth)
        if not self.policy.acts:
            return
        managed = self._managed_ids()
        for executor in sorted(self._ledger.executors()):
            for _ in range(64):
                in_memory = [r for r in self._ledger.in_memory(executor) if r.rdd_id in managed]
                if (
                    sum(r.memory_size for r in self._ledger.in_memory(executor))
                    <= (self.memory_budget)
                    or not in_memory
                ):
                    break
                newest = max(in_memory, key=lambda r: (r.last_access, r.key))
                before = self._ledger.memory_used(executor)
                self._admit(newest.key, executor)
                if self._ledger.memory_used(executor) >= before:
                    break

    # ---- datasets: registration, persist, unpersist -----------------------------------------
    def _on_rdd_created(self, rdd) -> None:
        try:
            token = next(self._tokens)
            rdd._blaze_token = token
            site = _user_site()
            with self._lock:
                self._tracker.register(token, site)
                self._objects[token] = weakref.ref(rdd)
                self._unresolved.append(token)
        except Exception as exc:
            self._count_error("register", exc)

    def _before_derive(self, prev) -> None:
        """autoCache at derivation time: persist ``prev`` if its site is known to be reused."""
        if not (self.policy.acts and self.config.auto_cache) or prev.is_cached:
            return
        if _thin_over_cache(prev):
            return
        token = getattr(prev, "_blaze_token", None)
        if token is None:
            return
        try:
            with self._lock:
                use = self._tracker.datasets.get(token)
                reused = use is not None and self._tracker.is_reused_site(use.site)
            if reused:
                log.debug("blaze: autoCache at derivation %s (%s)", prev, use.site)
                self._persist_rdd(prev, None, self._originals["RDD.persist"])
                with self._lock:
                    self._ledger.counters.decisions["auto_cache"] += 1
        except Exception as exc:
            self._count_error("before_derive", exc)

    def _token_of(self, obj) -> int:
        token = getattr(obj, "_blaze_token", None)
        if token is None:
            token = next(self._tokens)
            obj._blaze_token = token
            with self._lock:
                self._tracker.register(token, _user_site())
                self._objects[token] = weakref.ref(obj)
        return token

    def _register_dataset(self, obj, rdd_id: int, kind: str, *, managed: bool) -> None:
        token = self._token_of(obj)
        with self._lock:
            site = self._tracker.datasets[token].site
            self._datasets[rdd_id] = ManagedDataset(
                rdd_id, token, site, kind, weakref.ref(obj), managed
            )
            self._jvm_to_token[rdd_id] = token
            self._tracker.mark_persisted(token, managed=managed)
            if managed:
                self._ledger.counters.decisions[f"persist_{kind}"] += 1
                self._predict_sizes(rdd_id, site)

    def _predict_sizes(self, rdd_id: int, site: str) -> None:
        """Register, before it is computed, each partition size predicted for a new dataset:
        ``costmodel.predict`` regressions over earlier datasets of the same site (the last
        size until it has enough points), so the report can compare them with what Spark
        stores."""
        try:
            self._predictors.register_rdd(rdd_id, site)
            for split, last_size in self._site_sizes.get(site, {}).items():
                guess = self._predictors.predict(site, split=split)
                size = guess.size_bytes if guess is not None else last_size
                self._ledger.predict_size((rdd_id, split), size)
        except Exception as exc:
            self._count_error("predict", exc)

    def _persist_rdd(self, rdd, level, original):
        from pyspark import StorageLevel

        level = StorageLevel.MEMORY_ONLY if level is None else level
        blaze_level = is_blaze_level(level)
        if getattr(rdd, "_blaze_managed", False):
            return rdd
        if self.policy.name == "spark":
            original(rdd, StorageLevel.MEMORY_ONLY if blaze_level else level)
            self._register_dataset(rdd, rdd.id(), "rdd", managed=False)
            return rdd
        if blaze_level or self.config.auto_cache:
            if not self.policy.caches:
                rdd.is_cached = False
                with self._lock:
                    self._ledger.counters.decisions["persist_ignored"] += 1
                return rdd
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
        if self.policy.name == "spark" or not (blaze_level or self.config.auto_cache):
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
        session = df.sparkSession
        rdd_id = self._bridge.dataframe_rdd_id(session, df._jdf)
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
                    self._ledger.forget_rdd(rdd_id, "user_unpersist")
            if token is not None:
                self._tracker.mark_unpersisted(token)
        return result

    def _auto_unpersist(self, token: int) -> None:
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
        self._ledger.forget_rdd(dataset.rdd_id, "auto_unpersist")
        self._ledger.counters.decisions["auto_unpersist"] += 1

    # ---- job boundaries -----------------------------------------------------------------------
    def _before_job(self, rdd) -> None:
        if not self.policy.acts:
            return
        try:
            # let the previous jobs' block events land first: which datasets are fully
            # cached decides how far back this job reads, so the choice must not race them
            self.sync(timeout_s=30)
            with self._lock:
                used, parents = self._datasets_used_by(rdd)
                chosen = self._tracker.start_job(used, parents)
            if not self.config.auto_cache:
                return
            for token in chosen:
                ref = self._objects.get(token)
                obj = ref() if ref is not None else None
                if obj is None or obj.is_cached or _thin_over_cache(obj):
                    continue
                log.debug("blaze: autoCache %s (%s)", obj, self._tracker.datasets[token].site)
                self._persist_rdd(obj, None, self._originals["RDD.persist"])
                with self._lock:
                    self._ledger.counters.decisions["auto_cache"] += 1
        except Exception as exc:  # a bookkeeping failure must never fail the user's job
            self._count_error("before_job", exc)

    def _after_job(self) -> None:
        if not self.policy.acts:
            return
        try:
            with self._lock:
                tokens = self._tracker.finish_job(auto_unpersist=self.config.auto_unpersist)
                for token in tokens:
                    self._auto_unpersist(token)
        except Exception as exc:
            self._count_error("after_job", exc)

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
                self._jvm_to_token.setdefault(int(rdd_id), token)
        self._unresolved = pending

    def _datasets_used_by(self, rdd) -> tuple[set[int], dict[int, set[int]]]:
        """Tokens of the datasets a job on ``rdd`` reads, and their derivation edges."""
        self._resolve_jvm_ids()

        def fully_cached(rdd_id: int, num_partitions: int) -> bool:
            return len(self._ledger.cached_partitions(rdd_id)) >= num_partitions

        graph = self._bridge.lineage(rdd._jrdd, fully_cached, LINEAGE_WALK_LIMIT)
        self._resolve_jvm_ids()
        used: set[int] = set()
        parents: dict[int, set[int]] = defaultdict(set)
        start = [rdd]
        for rdd_id in graph:
            token = self._jvm_to_token.get(rdd_id)
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
            token = self._jvm_to_token.get(rdd_id)
            if token is None:
                continue
            stack, seen = list(graph[rdd_id]), set()
            while stack:
                parent = stack.pop()
                if parent in seen:
                    continue
                seen.add(parent)
                parent_token = self._jvm_to_token.get(parent)
                if parent_token is not None and parent_token != token:
                    parents[token].add(parent_token)
                else:
                    stack.extend(graph.get(parent, ()))
        return used, parents

    # ---- report ---------------------------------------------------------------------------------
    def _count_error(self, where: str, exc: BaseException) -> None:
        self._errors[where] += 1
        self._last_error = f"{where}: {type(exc).__name__}: {exc}"
        log.debug("blaze manager error in %s", where, exc_info=exc)

    def _profile_sites(self) -> dict:
        with self._lock:
            sites = self._tracker.profile()
            for site, sizes in self._site_sizes.items():
                if site in sites and sizes:
                    sites[site]["partition_bytes"] = sum(sizes.values()) / len(sizes)
            for site, samples in self._site_compute_ms.items():
                if site in sites and samples:
                    sites[site]["compute_ms"] = sum(samples) / len(samples)
            return sites

    def report(self, *, sync: bool = True) -> dict:
        """Counters since attach: hits, misses, recomputations, disk traffic, evictions...

        ``sync``: first wait until every event Spark has posted so far is handled (events
        arrive after the fact), so the report covers every job that has returned.

        Keys: ``hits``, ``misses``, ``recomputed_partitions``, ``disk_bytes_written``,
        ``disk_bytes_read``, ``evictions_by_reason``, ``decisions``, ``predicted_vs_observed``
        (plus ``policy``, ``memory_budget_bytes``, ``max_over_budget_bytes``, ``errors``...).
        """
        if sync and self._attached and threading.current_thread() is not self._worker:
            try:
                self.sync()
            except Exception as exc:  # a report must not fail; say it may be incomplete
                self._count_error("report_sync", exc)
        with self._lock:
            result = self._ledger.report()
            result["predicted_vs_observed"]["regression"] = self._predictors.error_report()[
                "overall"
            ]
            result.update(
                policy=self.policy.name,
                memory_budget_bytes=self.memory_budget,
                storage_memory_bytes=self.storage_memory,
                mode="local" if self._bridge.is_local else "cluster",
                managed_datasets=sum(1 for d in self._datasets.values() if d.managed),
                disk_cost_ms_per_mib={
                    "write": self.disk_cost.write_ms_per_mib if self.disk_cost else None,
                    "read": self.disk_cost.read_ms_per_mib if self.disk_cost else None,
                },
                errors=dict(self._errors),
                last_error=self._last_error,
                listener_errors=dict(self._listener.errors) if self._listener else {},
                attached=self._attached,
            )
        return result

    def __enter__(self) -> BlazeManager:
        return self

    def __exit__(self, *exc) -> None:
        self.detach()

    def __repr__(self) -> str:
        state = "attached" if self._attached else "detached"
        return f"BlazeManager({self.policy.name}, {state}, budget={self.memory_budget})"
