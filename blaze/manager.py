"""The cache manager: decides, for every cached partition, memory, disk or nothing.

``blaze.attach(spark, policy=..., memory_budget=...)`` returns a :class:`BlazeManager` bound
to the SparkContext. This module attaches and detaches it and runs its event worker; the
manager's other jobs live in one module each:

- :mod:`blaze.registry` — every dataset the program creates, and what persist/unpersist do;
- :mod:`blaze.engine` — the application's cost model, kept in step with the listener's
  lineage DAG (F, R, W, Rd, hit costs, cost, propagation, the baselines' reference counts
  and distances); :mod:`blaze.measure` feeds it measured compute times and disk rates;
- :mod:`blaze.enforce` — each block event becomes a policy decision, enforced in Spark at once,
  and Spark's storage status corrects the book at every job end;
- :mod:`blaze.boundaries` — before and after each job: autoCache and autoUnpersist;
- :mod:`blaze.prefetch` — MRD's prefetch of the spilled partitions needed soonest;
- :mod:`blaze.reporting` — ``report()``, ``explain()``, the decision log and the profile.

Policies (each a row of :data:`costmodel.policy_table.POLICY_TABLE`): ``spark`` (program's
own levels, Spark's LRU; the manager only observes and reports), ``none`` (persist calls are
ignored), ``mem_only``/``mem_disk`` (LRU within the budget, dropping / spilling),
``mem_disk_au`` (Spark's MEMORY_AND_DISK and LRU, with autoUnpersist), ``lrc``, ``mrd`` (the
papers' rules on the program's own cache calls), ``blaze``/``blaze_auto`` (cost-based).

Cluster mode (``local-cluster``, standalone, YARN...): block status, removal and unpersist
work through the driver's BlockManagerMaster; Spark has no remote "move this block to disk"
command, so a spill decision degrades to a drop there (counted as
``decisions["spill_degraded_to_drop"]``). The budget applies to each executor separately.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import queue
import threading
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from blaze import hooks, sparklog
from blaze._jvm import JvmBridge
from blaze.boundaries import JobBoundaryMixin
from blaze.config import KEYWORDS, PREFIX, BlazeConfig, local_dir_of
from blaze.enforce import EnforcementMixin
from blaze.engine import Engine
from blaze.explain import DecisionLog
from blaze.ledger import Ledger
from blaze.measure import Measurements
from blaze.policies import ManagerPolicy, get_manager_policy
from blaze.prefetch import Prefetcher
from blaze.registry import ManagedDataset, RegistryMixin
from blaze.report_file import publish_report
from blaze.reporting import ReportingMixin
from blaze.tracker import UsageTracker
from blaze_errors import BlazeError, ConfigError
from costmodel.disk import OnlineDiskCost
from costmodel.predict import Predictors
from lineage.timing import PartitionTimer

__all__ = ["BlazeManager", "ManagedDataset", "ManagerError", "active_manager", "attach"]

log = logging.getLogger("blaze")

SYNC_TIMEOUT_S = 60.0

_active: dict[int, BlazeManager] = {}
_active_lock = threading.Lock()


class ManagerError(BlazeError, RuntimeError):
    """The manager cannot attach (already attached, Spark stopped, bad profile...)."""


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
    config = BlazeConfig.from_conf(_merge_overrides(conf, policy, overrides))
    manager = BlazeManager(sc, session, config, bridge)
    manager._start()
    return manager


class BlazeManager(RegistryMixin, EnforcementMixin, JobBoundaryMixin, ReportingMixin):
    """One SparkContext's cache manager. Create with :func:`blaze.attach`."""

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
        self._ledger = Ledger()
        self._tracker = UsageTracker()
        self._tokens = itertools.count(1)
        self._objects: dict[int, Any] = {}  # token -> weakref to the Python dataset
        self._unresolved: list[int] = []
        self._token_by_rdd_id: dict[int, int] = {}
        self._rdd_of_token: dict[int, int] = {}  # every dataset ever registered
        self._datasets: dict[int, ManagedDataset] = {}  # by JVM rdd id
        self._site_compute_ms: dict[str, list[float]] = defaultdict(list)
        self._site_sizes: dict[str, dict[int, int]] = defaultdict(dict)
        self._predictors = Predictors()
        self._observed: dict[int, set[int]] = {}  # rdd id -> splits fed to the predictors
        self._released_tokens: deque[int] = deque()  # datasets the program dropped
        self._errors: dict[str, int] = defaultdict(int)
        self._deferred: dict[tuple[int, int, str], str] = {}  # spills waiting for a lock
        self._awaiting: dict[tuple[int, int], str] = {}  # admissions waiting for R
        self._last_error: str | None = None
        self._events: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None
        self._listener = None
        self._unsubscribe = None
        self._originals: dict[str, Any] = {}
        self._attached = False
        self._detached_at: float | None = None
        self._dropped_events: int | None = None
        self._decision_log_written: str | None = None
        self._app_id = bridge.app_id
        self._explain = DecisionLog(config.explain_capacity)
        self._engine: Engine | None = None
        self._inputs: Measurements | None = None
        self._prefetcher: Prefetcher | None = None
        self.memory_budget = 0
        self.storage_memory = 0
        self.disk_cost = None

    # ---- lifecycle ------------------------------------------------------------------------
    def _start(self) -> None:
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
            self._use_profile()
        self.disk_cost = self._disk_cost()
        from lineage.listener import LineageListener

        with _active_lock:
            _active[id(self._sc)] = self
        self._attached = True
        try:
            self._listener = LineageListener.attach(self._sc)
            # the engine reads the listener's lineage DAG: the one graph of the application
            self._engine = Engine(
                self._listener.dag,
                self.disk_cost,
                site_of=self._site_of,
                later_reads=self._future_fallback,
                later_gap=self._jobs_to_next_read,
                estimator=self._estimate,
            )
            self._inputs = Measurements(
                self._engine, OnlineDiskCost(self.disk_cost), PartitionTimer(self._sc)
            )
            if self.policy.info.prefetches:
                self._prefetcher = Prefetcher(self._ledger, self._engine, self._bridge)
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

    def _use_profile(self) -> None:
        """Start from a recorded profile: per-site uses (F before any job) and the sites
        whose datasets were cached (autoCache at first use), plus the fitted predictors."""
        from costmodel.profile import load

        if not self.config.profile_path:
            raise ConfigError(f"{PREFIX}profile.mode=use needs {PREFIX}profile.path")
        profile = load(self.config.profile_path, app_name=self._bridge.app_name)
        sites = profile.sites
        self._tracker = UsageTracker(
            profile_uses={s: int(v.get("uses", 0)) for s, v in sites.items()},
            # sites whose datasets were cached then, not every ancestor of them that a
            # reused dataset's jobs also read (those need no cache of their own)
            profile_reused=[s for s, v in sites.items() if v.get("cached", v.get("reused"))],
        )
        self._predictors = profile.predictors

    def _estimate(self, spec, split: int):
        """Size and compute time of a dataset's partition nobody has measured yet: the fitted
        predictor of its site if it has one, else the mean own compute time of the site's
        earlier generations; nothing when the site was never measured (its first block is
        decided once the task that computed it reports its time)."""
        from costmodel.cost import Estimate

        site = self._site_of(spec.rdd_id)
        if site is None:
            return None
        predicted = self._predictor_estimate(spec, split, site)
        if predicted is not None:
            return predicted
        samples = self._site_compute_ms.get(site)
        if not samples:
            return None
        measured = self._engine.model.measurements_of((spec.rdd_id, split))
        size = measured.size_bytes if measured and measured.size_bytes else 0.0
        return Estimate(size, sum(samples) / len(samples))

    def _predictor_estimate(self, spec, split: int, site: str):
        from costmodel.cost import Estimate

        if site not in self._predictors.datasets:
            return None
        _, iteration = self._predictors.register_rdd(spec.rdd_id, site)
        guess = self._predictors.datasets[site].predict(iteration, 1.0, split)
        if guess is None or not guess.compute_ms > 0:  # no time fitted: not an estimate of R
            return None
        return Estimate(guess.size_bytes, guess.compute_ms)

    def _configure_logging(self) -> None:
        sparklog.install(log, self._bridge.log4j(log.name), self.config.log_level)

    def _storage_memory(self) -> int:
        statuses = self._bridge.storage_status()
        executors = [s for s in statuses if s.executor_id != "driver"] or statuses
        if not executors:
            raise ManagerError("Spark reports no block manager; is the SparkContext running?")
        return min(s.max_memory for s in executors)

    def _disk_cost(self):
        """W, Rd and the hit costs, probed in the directory Spark writes blocks to."""
        from costmodel.disk import disk_cost_from_config

        return disk_cost_from_config(
            self.config.disk_write_ms_per_mib,
            self.config.disk_read_ms_per_mib,
            local_dir_of(self._bridge.conf()),
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
            self._record_profile()
        self._write_decision_log()
        publish_report(log, self._final_report(), self.config.report_path)

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

    def book_sizes(self) -> dict[str, int]:
        """Entries in each of the manager's growing tables: what a long program's driver
        memory is made of (``benchmarks/long_program.py`` checks they stay flat)."""
        with self._lock:
            tables = {
                "datasets": self._datasets,
                "rdd_of_token": self._rdd_of_token,
                "tracker": self._tracker.datasets,
                "observed": self._observed,
                "site_sizes": self._site_sizes,
                "ledger": self._ledger.blocks,
                "cost_model_rdds": self._engine.model.rdds,
                "predictor_points": self._predictors.point_count(),
            }
            return {k: v if isinstance(v, int) else len(v) for k, v in tables.items()}

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
