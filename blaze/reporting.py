"""Reporting: the manager's counters, its explanations per dataset, its decision log and profile.

Why in one place: everything a user (or a later run) reads back from a manager — ``report()``,
``explain(rdd_or_df)``, the decision log written at detach, the profile recorded in
``spark.blaze.profile.mode=record`` — is a view of the same state, and none of it may fail the
user's program (errors are counted, never raised).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from blaze.config import BlazeConfig
from blaze.engine import Engine
from blaze.explain import DecisionLog, decision_log_path_for, write_decision_log
from blaze.fault_count import ErrorCounter
from blaze.ledger import Ledger
from blaze.measurements import SiteMeasurements
from blaze.orders import ExecutorOrders
from blaze.policies import ManagerPolicy
from blaze.registry import Registry, mark_of

__all__ = ["Reporting"]

log = logging.getLogger("blaze")


class Reporting:
    """``report``, ``explain`` and the files of one manager: read-only views of its parts.

    ``session`` says whether the manager is attached and which thread is its worker (a
    report asked from the worker must not wait for itself), and ``sync`` waits for it.
    """

    def __init__(
        self,
        *,
        session,
        registry: Registry,
        measurements: SiteMeasurements,
        ledger: Ledger,
        engine: Engine,
        bridge,
        policy: ManagerPolicy,
        config: BlazeConfig,
        explain: DecisionLog,
        errors: ErrorCounter,
        orders: ExecutorOrders,
        settings: dict,
        lock,
    ) -> None:
        self._session = session
        self._registry = registry
        self._measurements = measurements
        self._ledger = ledger
        self._engine = engine
        self._bridge = bridge
        self._policy = policy
        self._config = config
        self._explain = explain
        self._errors = errors
        self._orders = orders
        self._settings = settings  # memory_budget_bytes, storage_memory_bytes
        self._lock = lock
        self._app_id = bridge.app_id
        self._dropped_events: int | None = None
        self.decision_log_written: str | None = None
        self.detached_at: float | None = None

    def _count_error(self, where: str, exc: BaseException) -> None:
        self._errors.count(where, exc)

    def _may_sync(self) -> bool:
        return self._session.attached and not self._session.on_worker_thread()

    # ---- explanations ------------------------------------------------------------------------
    def explain(self, dataset) -> dict:
        """Per partition of ``dataset`` (an RDD or a cached DataFrame): where it is now, its
        current cost inputs, and every recorded decision about it, as plain data.

        ``{"rdd": id, "kind": ..., "site": ..., "dataset": [dataset-level decisions],
        "partitions": {split: {"state": "MEMORY"|"DISK"|"NONE", "inputs": {F, R, ...},
        "history": [decisions, oldest first]}}}``
        """
        if self._may_sync():
            try:
                self._session.sync()
            except Exception as exc:
                self._count_error("explain_sync", exc)
        rdd_id = self._rdd_id_of(dataset)
        with self._lock:
            entries = self._explain.for_rdd(rdd_id) if rdd_id is not None else []
            known = self._registry.datasets.get(rdd_id) if rdd_id is not None else None
            splits = (
                set(self._ledger.book.cached_partitions(rdd_id)) if rdd_id is not None else set()
            )
            splits |= {e["split"] for e in entries if "split" in e}
            partitions = {}
            for split in sorted(splits):
                holders = self._ledger.book.locate(rdd_id, split)
                if any(r.memory_size for r in holders):
                    state = "MEMORY"
                elif holders:
                    state = "DISK"
                else:
                    state = "NONE"
                try:
                    inputs = self._engine.inputs((rdd_id, split), on_disk=state == "DISK")
                except Exception as exc:
                    self._count_error("explain", exc)
                    inputs = {}
                partitions[split] = {
                    "state": state,
                    "executors": sorted(r.executor_id for r in holders),
                    "inputs": inputs,
                    "history": [dict(e) for e in entries if e.get("split") == split],
                }
            return {
                "rdd": rdd_id,
                "kind": known.kind if known else None,
                "site": known.site if known else None,
                "managed": bool(known and known.managed),
                "dataset": [dict(e) for e in entries if "split" not in e],
                "partitions": partitions,
            }

    def _rdd_id_of(self, dataset) -> int | None:
        if isinstance(dataset, int):
            return dataset
        if hasattr(dataset, "sparkSession") and hasattr(dataset, "schema"):  # a DataFrame
            token = mark_of(dataset, "_blaze_token")
            with self._lock:
                if token is not None and token in self._registry.rdd_of_token:
                    return self._registry.rdd_of_token[token]  # also after it was unpersisted
            return self._bridge.dataframe_rdd_id(dataset)
        return int(dataset.id())

    def decision_log_path(self) -> Path | None:
        """``spark.blaze.explain.path``, else next to this application's event log."""
        if self._config.explain_path:
            return Path(self._config.explain_path)
        event_log = self._bridge.event_log_file()
        return decision_log_path_for(event_log) if event_log else None

    def write_decision_log(self) -> None:
        path = self.decision_log_path()
        if path is None:
            return
        try:
            with self._lock:
                entries = list(self._explain)
                header = {
                    "app_name": self._bridge.app_name,
                    "app_id": self._app_id,
                    "policy": self._policy.name,
                    "capacity": self._explain.capacity,
                    "recorded": self._explain.recorded,
                    "fell_off": self._explain.dropped,
                }
            write_decision_log(path, header, entries)
            self.decision_log_written = str(path)
        except Exception as exc:
            self._count_error("decision_log_write", exc)
            log.warning("blaze: could not write the decision log to %s: %s", path, exc)

    # ---- profile ------------------------------------------------------------------------------
    def _profile_sites(self) -> dict:
        with self._lock:
            return self._measurements.profile_sites(self._registry.tracker.profile())

    def record_profile(self) -> None:
        from costmodel.profile import record

        try:
            sites = self._profile_sites()
            with self._lock:
                record(
                    self._config.profile_path,
                    self._engine.model,
                    app_name=self._bridge.app_name,
                    predictors=self._measurements.predictors,
                    sites=sites,
                )
        except Exception as exc:
            self._count_error("profile_write", exc)
            log.warning("blaze: could not write the profile: %s", exc)

    # ---- the report ---------------------------------------------------------------------------
    def book_sizes(self) -> dict[str, int]:
        """Entries in each of the manager's growing tables: what a long program's driver
        memory is made of (``benchmarks/long_program.py`` checks they stay flat)."""
        with self._lock:
            tables = {
                "datasets": self._registry.datasets,
                "rdd_of_token": self._registry.rdd_of_token,
                "tracker": self._registry.tracker.datasets,
                "observed": self._measurements.observed,
                "site_sizes": self._measurements.sizes,
                "ledger": self._ledger.book.blocks,
                "computed": self._ledger.computed_held,
                "stage_graphs": self._ledger.stage_graphs_held,
                "decision_log": len(self._explain),
                "cost_model_rdds": self._engine.model.rdds,
                "predictor_points": self._measurements.predictors.point_count(),
            }
            return {k: v if isinstance(v, int) else len(v) for k, v in tables.items()}

    def report(self, *, sync: bool = True) -> dict:
        """Counters since attach: hits, misses, recomputations, disk traffic, evictions...

        ``sync``: first wait until every event Spark has posted so far is handled (events
        arrive after the fact), so the report covers every job that has returned.

        Keys: ``hits``, ``misses``, ``recomputed_partitions``, ``disk_bytes_written``,
        ``disk_bytes_read``, ``evictions_by_reason``, ``decisions``, ``predicted_vs_observed``
        (plus ``policy``, ``memory_budget_bytes``, ``max_over_budget_bytes``, ``errors``,
        ``profile_mode``, ``profiled_sites`` (sites of the profile it started from),
        ``listener_events_dropped``, ``attached``, ``detached_at``, ``decision_log``...).
        ``attached`` says whether the manager was attached for the run (it stays true in the
        report written at detach); ``detached_at`` is the epoch second it let go, else None.
        """
        if sync and self._may_sync():
            try:
                self._session.sync()
            except Exception as exc:  # a report must not fail; say it may be incomplete
                self._count_error("report_sync", exc)
        dropped = None
        if not self._bridge.is_stopped():
            try:
                dropped = self._bridge.dropped_listener_events()
            except Exception as exc:
                self._count_error("dropped_events", exc)
        if dropped is not None:
            self._dropped_events = dropped
        with self._lock:
            self._orders.collect(fresh=True)
            result = self._ledger.report()
            result.update(self._orders.report())
            result["spark_evictions"] += self._orders.late_evictions
            result["predicted_vs_observed"]["regression"] = (
                self._measurements.predictors.error_report()["overall"]
            )
            result.update(
                policy=self._policy.name,
                **self._settings,
                mode="local" if self._bridge.is_local else "cluster",
                managed_datasets=len(self._registry.managed_ids()),
                profile_mode=self._config.profile_mode,
                profiled_sites=self._registry.tracker.profiled_sites,
                disk_cost_ms_per_mib=self._measurements.report(),
                errors=dict(self._errors.counts),
                last_error=self._errors.last,
                listener_errors=self._session.listener_errors(),
                listener_events_dropped=self._dropped_events,
                task_events_skipped=self._session.task_events_skipped(),
                attached=self._session.attached or self.detached_at is not None,
                detached_at=self.detached_at,
                decisions_logged=self._explain.recorded,
                decision_log=self.decision_log_written,
            )
        return result

    def final_report(self) -> dict:
        self.detached_at = round(time.time(), 3)
        return self.report(sync=False)
