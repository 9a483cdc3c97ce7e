"""The cache manager: decides, for every cached partition, memory, disk or nothing.

``blaze.attach(spark, policy=..., memory_budget=...)`` returns a :class:`BlazeManager` bound
to the SparkContext. This module composes the manager's parts, attaches and detaches it and
runs it; :class:`blaze.event_worker.EventWorker` hands it Spark's events one at a time, and
:meth:`BlazeManager._handle` routes each to the parts. Each part owns its state and is handed the parts it reads:

- :class:`blaze.registry.Registry` — every dataset the program creates (tokens, sites, the
  persisted ones) and the usage tracker keyed by them;
- :class:`blaze.ledger.Ledger` — the one book of where each block lives, and the counters;
- :class:`blaze.engine.Engine` — the application's cost model, reading the listener's
  :class:`lineage.dag.LineageDag` (F, R, W, Rd, cost, propagation, the baselines' reference
  counts and distances);
- :class:`blaze.measurements.SiteMeasurements` — each partition's own compute time
  (:mod:`lineage.timing`), W and Rd corrected online from the tasks, per-site sizes,
  compute times and predictors;
- :class:`blaze.persistence.Persistence` — what persist/cache/unpersist calls do;
- :class:`blaze.enforce.Enforcement` — each block event becomes a policy decision, carried
  out in Spark at once, and Spark's storage status corrects the book at every job end;
- :class:`blaze.boundaries.JobBoundaries` — before and after each job: autoCache and
  autoUnpersist;
- :class:`blaze.reporting.Reporting` — ``report()``, ``explain()``, the decision log, profile;
- :mod:`blaze.prefetch` — spilled blocks read back as memory frees (MRD), or allowed back
  for their next read (Blaze).

Policies (each a row of :data:`costmodel.policy_table.POLICY_TABLE`): ``spark`` (program's
own levels, Spark's LRU; the manager only observes and reports), ``none`` (persist calls are
ignored), ``mem_only``/``mem_disk`` (LRU within the budget, dropping / spilling),
``mem_disk_au`` (Spark's MEMORY_AND_DISK and LRU, with autoUnpersist), ``lrc``, ``mrd`` (the
papers' rules on the program's own cache calls), ``blaze``/``blaze_auto`` (cost-based).
autoCache and autoUnpersist act only where the policy allows them.

Local mode and clusters (``local-cluster``, standalone, YARN...) take one path: every spill
or drop is an order the JVM plugin's executor half carries out on the executor that holds
the block (:mod:`blaze.orders`). The budget applies to each executor separately.
"""

from __future__ import annotations

import atexit
import logging
import threading
from dataclasses import replace

from blaze import hooks, sparklog
from blaze._jvm import JvmBridge
from blaze._plugin_jvm import PluginMailbox
from blaze.boundaries import JobBoundaries
from blaze.config import PREFIX, BlazeConfig, merge_overrides
from blaze.enforce import Enforcement
from blaze.engine import Engine
from blaze.event_worker import EventWorker
from blaze.explain import DecisionLog
from blaze.fault_count import ErrorCounter
from blaze.ledger import Ledger
from blaze.manager_setup import disk_cost, memory_budget, profile_start, slots, storage_memory
from blaze.measurements import SiteMeasurements
from blaze.orders import ExecutorOrders
from blaze.persistence import Persistence
from blaze.placement import SitePlacement
from blaze.policies import ManagerPolicy, get_manager_policy
from blaze.prefetch import read_back_for
from blaze.put_room import PutRoom
from blaze.registry import ManagedDataset, Registry
from blaze.report_file import publish_report
from blaze.reporting import Reporting
from blaze.tracker import UsageTracker
from blaze_errors import BlazeError
from costmodel.disk import OnlineDiskCost
from costmodel.predict import Predictors
from lineage.dag import LineageDag
from lineage.events import BlockEvent, JobRun, RddUnpersisted, StageRun, TaskRun, TaskStarted
from lineage.timing import PartitionTimer

__all__ = ["BlazeManager", "ManagedDataset", "ManagerError", "active_manager", "attach"]

log = logging.getLogger("blaze")

SYNC_TIMEOUT_S = 60.0
ORDERS_SETTLE_S = 10.0  # executors fetch orders every 50 ms; a locked block waits longer

_active: dict[int, BlazeManager] = {}
_active_lock = threading.Lock()


class ManagerError(BlazeError, RuntimeError):
    """The manager cannot attach (already attached, Spark stopped, bad profile...)."""


def active_manager(sc) -> BlazeManager | None:
    """The manager attached to ``sc`` (a SparkContext or SparkSession), if any."""
    sc = getattr(sc, "sparkContext", sc)
    with _active_lock:
        return _active.get(id(sc))


def attach(spark, policy: str | None = None, **overrides) -> BlazeManager:
    """Attach a cache manager to ``spark`` (a SparkSession or SparkContext) and return it.

    ``policy`` defaults to ``spark.blaze.policy`` of the context's conf; ``overrides`` are
    keyword options (``memory_budget="64m"``, ``auto_cache=False``, ...) or full
    ``spark.blaze.*`` keys. Bad input (unknown policy, a budget ≤ 0 or above Spark's storage
    memory, a profile of another application) raises one :class:`BlazeError` here.
    """
    sc = getattr(spark, "sparkContext", spark)
    if not JvmBridge.is_running(sc):
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
    config = BlazeConfig.from_conf(merge_overrides(conf, policy, overrides))
    manager = BlazeManager(sc, session, config, bridge)
    manager._start()
    return manager


class BlazeManager:
    """One SparkContext's cache manager. Create with :func:`blaze.attach`.

    Construction reads Spark's storage memory, checks the budget and the profile (raising
    one :class:`BlazeError` on bad input) and composes the parts; :meth:`_start` then
    subscribes to the listener and wraps PySpark's entry points.
    """

    def __init__(self, sc, session, config: BlazeConfig, bridge: JvmBridge) -> None:
        self._sc = sc
        self._session = session
        self.policy: ManagerPolicy = get_manager_policy(config.policy)
        # autoCache/autoUnpersist act only where the policy allows them (the published
        # baselines act on the program's own cache calls alone)
        self.config = replace(
            config,
            auto_cache=config.auto_cache and self.policy.auto_cache,
            auto_unpersist=config.auto_unpersist and self.policy.auto_unpersist,
        )
        self._bridge = bridge
        self._lock = threading.RLock()
        self.errors = ErrorCounter()
        sparklog.install(log, bridge.log4j(log.name), config.log_level)
        storage = storage_memory(bridge)
        if storage is None:
            raise ManagerError("Spark reports no block manager; is the SparkContext running?")
        self.storage_memory = storage
        self.memory_budget = memory_budget(config, self.storage_memory)
        tracker, predictors = (
            profile_start(config, bridge)
            if config.profile_mode == "use"
            else (
                UsageTracker(),
                Predictors(),
            )
        )
        probed = disk_cost(config, bridge)
        self.registry = Registry(tracker, self._lock, self.errors.count)
        self.ledger = Ledger()
        # the one graph of the application: the listener fills it, the engine reads it
        self.lineage = LineageDag()
        placement = SitePlacement()
        self.engine = Engine(
            self.lineage,
            probed,
            site_of=self.registry.site_of,
            later_reads=self.registry.future_fallback,
            later_gap=self.registry.jobs_to_next_read,
            job_reads=self.registry.note_job_reads,
            estimator=lambda spec, split: self.measurements.estimate(spec, split),
            memory_only=placement.memory_only,
        )
        self.measurements = SiteMeasurements(
            predictors,
            self.engine,
            OnlineDiskCost(probed),
            PartitionTimer(sc),
            self.registry.site_of,
            self.errors.count,
        )
        self.decision_log = DecisionLog(config.explain_capacity)
        self.put_room = PutRoom(
            storage_memory=self.storage_memory,
            configured=config.memory_budget,
            slots=slots(bridge, sc.defaultParallelism),
            registry=self.registry,
            ledger=self.ledger,
            site_sizes=self.measurements.sizes,
            on_disk=placement.on_disk,
        )
        self.orders = ExecutorOrders(PluginMailbox(sc))
        shared = {"ledger": self.ledger, "engine": self.engine, "policy": self.policy}
        prefetcher = read_back_for(
            self.policy.info,
            registry=self.registry,
            ledger=self.ledger,
            engine=self.engine,
            bridge=bridge,
            budget=self.put_room.budget,
            explain=self.decision_log,
            orders=self.orders,
        )
        self.persistence = Persistence(
            registry=self.registry,
            measurements=self.measurements,
            bridge=bridge,
            config=self.config,
            explain=self.decision_log,
            lock=self._lock,
            placement=placement,
            prefetcher=prefetcher,
            **shared,
        )
        self.enforcement = Enforcement(
            registry=self.registry,
            measurements=self.measurements,
            put_room=self.put_room,
            orders=self.orders,
            storage=bridge,
            explain=self.decision_log,
            on_error=self.errors.count,
            placement=placement,
            prefetcher=prefetcher,
            **shared,
        )
        self.boundaries = JobBoundaries(
            registry=self.registry,
            persistence=self.persistence,
            bridge=bridge,
            config=self.config,
            explain=self.decision_log,
            lock=self._lock,
            # a job boundary needs the earlier events handled, not the orders carried out
            sync=lambda timeout_s: self.sync(timeout_s=timeout_s, orders=False),
            on_error=self.errors.count,
            **shared,
        )
        self.reporting = Reporting(
            session=self,
            registry=self.registry,
            measurements=self.measurements,
            bridge=bridge,
            config=self.config,
            explain=self.decision_log,
            errors=self.errors,
            orders=self.orders,
            settings={
                "memory_budget_bytes": self.memory_budget,
                "storage_memory_bytes": self.storage_memory,
            },
            lock=self._lock,
            **shared,
        )
        self._worker = EventWorker(
            self._handle,
            lock=self._lock,
            flush_orders=self.orders.flush,
            on_error=self.errors.count,
        )
        self._listener = None
        self._unsubscribe = None
        self._attached = False

    # ---- lifecycle ------------------------------------------------------------------------
    def _start(self) -> None:
        from lineage.listener import LineageListener

        with _active_lock:
            _active[id(self._sc)] = self
        self._attached = True
        try:
            self._listener = LineageListener.attach(
                self._sc, dag=self.lineage, cached_stages_only=True
            )
            self._unsubscribe = self._listener.subscribe(self._worker.put_all, batched=True)
            self._worker.start()
            self.persistence.originals.update(hooks.install(self))
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

    @property
    def disk_cost(self):
        """W, Rd and the hit costs the engine prices with now (probed, corrected online)."""
        return self.engine.model.disk

    @property
    def attached(self) -> bool:
        return self._attached

    def on_worker_thread(self) -> bool:
        return self._worker.is_current()

    def listener_errors(self) -> dict:
        return dict(self._listener.errors) if self._listener else {}

    def task_events_skipped(self) -> int:
        return self._listener.task_events_skipped() if self._listener else 0

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
            self.errors.count("detach_sync", exc)
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._listener is not None:
            self._listener.detach()
        self._worker.stop()
        if self.config.profile_mode == "record":
            self.reporting.record_profile()
        self.reporting.write_decision_log()
        publish_report(log, self.reporting.final_report(), self.config.report_path)

    def sync(self, timeout_s: float = SYNC_TIMEOUT_S, *, orders: bool = True) -> None:
        """Wait until every Spark event so far is handled and (``orders``) every decision
        carried out on the executors — which takes up to two of their 50 ms polls."""
        if self._listener is not None and self._listener.attached:
            self._listener.wait_until_empty(timeout_s)
        self._worker.wait_until_handled(timeout_s)
        if orders:
            self.orders.settle(min(timeout_s, ORDERS_SETTLE_S))

    # ---- what users read ----------------------------------------------------------------
    def report(self, *, sync: bool = True) -> dict:
        return self.reporting.report(sync=sync)

    report.__doc__ = Reporting.report.__doc__

    def explain(self, dataset) -> dict:
        return self.reporting.explain(dataset)

    explain.__doc__ = Reporting.explain.__doc__

    def decision_log_path(self):
        return self.reporting.decision_log_path()

    def book_sizes(self) -> dict[str, int]:
        return self.reporting.book_sizes()

    book_sizes.__doc__ = Reporting.book_sizes.__doc__

    def on_spark_stop(self, sc) -> None:
        """``SparkContext.stop`` was called (blaze.hooks): a manager of that context detaches."""
        if sc is self._sc:
            self.detach()

    # ---- what each event tells ------------------------------------------------------------
    def _handle(self, event) -> None:
        """Hand one listener record to the parts that keep what it tells."""
        if isinstance(event, BlockEvent):
            self.enforcement.on_block(event)
        elif isinstance(event, TaskStarted):
            self.engine.on_task_start(event.stage_id, event.partition_index)
        elif isinstance(event, TaskRun):
            self.engine.on_task_end(event.stage_id, event.partition_index)
            self.enforcement.on_task(event)
        elif isinstance(event, StageRun):
            if not event.completed:  # the submitted event (see StageRun.completed)
                self.ledger.apply_stage(event)
            self.engine.on_stage(event)
            if event.completed:
                self.enforcement.on_stage_done(event.stage_id)
            else:
                self.enforcement.on_stage_submitted(event)
        elif isinstance(event, JobRun):
            if event.succeeded is None:
                self.persistence.register_built()
            self.engine.on_job(event)
            if event.succeeded is None:
                self.boundaries.on_job_started(event)
            else:
                self.enforcement.on_job_end()
                self.boundaries.on_job_ended()
        elif isinstance(event, RddUnpersisted):
            self.persistence.on_unpersisted(event.rdd_id)
