"""Enforcement: each block event becomes a decision of the policy, carried out in Spark at once.

When a managed partition enters memory (computed, or promoted back from disk by a read), the
policy is asked where it goes and which residents of that executor make room, with every
quantity taken from the engine (:mod:`blaze.engine`). The decision is enforced through
:mod:`blaze._jvm` — spill (local mode: Spark's own ``dropFromMemory``), drop (``removeBlock``;
the next use recomputes exactly that partition) — and recorded with its inputs in the decision
log. So managed memory per executor stays within the budget (plus, transiently, the block
being decided) and Spark's LRU never has to choose.

Per-event work is bounded by what the decision needs, not by how many partitions are cached:
memory totals come from the ledger's running sums, a partition that fits is admitted from its
own cost alone, and victims are read lazily from a per-executor index in the policy's
eviction order (:mod:`blaze.eviction`), never by listing every resident.

At a job end the ledger is corrected from Spark's storage status (lost or reordered events,
a block removed by someone else) and the budget is enforced again — when something since the
last correction says the book may be wrong (an eviction the manager did not order, a removal
of a block the book never had, an order that found its block elsewhere), and at least every
``RESYNC_INTERVAL_S`` (events Spark's bus dropped leave no sign). Reading the storage status
costs a few milliseconds of driver CPU, which a program of many short jobs would pay on every
job.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from blaze.block_book import BlockRecord
from blaze.engine import Engine
from blaze.eviction import ResidentIndexes
from blaze.explain import DecisionLog
from blaze.ledger import Ledger
from blaze.measurements import SiteMeasurements
from blaze.orders import ExecutorOrders
from blaze.placement import SitePlacement
from blaze.policies import ManagerPolicy
from blaze.prefetch import ReadBack
from blaze.put_room import PutRoom
from blaze.registry import Registry
from costmodel.policies import PartitionState
from costmodel.types import Location
from lineage.events import BlockEvent, StageRun, TaskRun

__all__ = ["Enforcement"]

RESYNC_ROUNDS = 64
RESYNC_INTERVAL_S = 1.0  # the longest the book goes uncorrected while jobs end


class Enforcement:
    """Admission and eviction of managed blocks, each decision carried out at once.

    ``put_room`` gives the budget per executor (storage memory less the room the running
    stages' puts need); ``orders`` hands each spill or drop to the executor
    that holds the block (the JVM plugin); ``storage`` reads Spark's storage status for the
    resync.
    """

    def __init__(
        self,
        *,
        ledger: Ledger,
        engine: Engine,
        registry: Registry,
        measurements: SiteMeasurements,
        policy: ManagerPolicy,
        put_room: PutRoom,
        orders: ExecutorOrders,
        storage,
        explain: DecisionLog,
        on_error: Callable[[str, Exception], None],
        placement: SitePlacement,
        prefetcher: ReadBack | None = None,
    ) -> None:
        self._ledger = ledger
        self._engine = engine
        self._registry = registry
        self._measurements = measurements
        self._policy = policy
        self.put_room = put_room
        self._orders = orders
        self._storage = storage
        self._explain = explain
        self._on_error = on_error
        self._prefetcher = prefetcher
        self._placement = placement
        self._awaiting: dict[tuple[int, int], str] = {}  # admissions waiting for R
        self._resident_indexes: ResidentIndexes | None = None  # made under first pressure
        self._last_resync = float("-inf")
        self._signs_at_resync: tuple[int, ...] | None = None

    def on_job_end(self) -> None:
        """Decide what waited for its R, then correct the book from Spark's storage status.

        Orders still being carried out are not waited for (the next job would wait with
        them): their blocks keep the book's view, which is where the order puts them."""
        self._admit_awaiting()
        self._orders.collect()
        self._ledger.on_job_end()
        signs = self._signs_of_a_wrong_book()
        due = time.monotonic() - self._last_resync >= RESYNC_INTERVAL_S
        if due or signs != self._signs_at_resync:
            self._resync()
            self._last_resync = time.monotonic()
            self._signs_at_resync = signs

    def _signs_of_a_wrong_book(self) -> tuple[int, ...]:
        """Counters that move when the book may disagree with Spark (see the module doc)."""
        counters = self._ledger.counters
        return (
            counters.spark_evictions,
            counters.evictions_by_reason["external_or_spark"],
            counters.evictions_by_reason["spark_spill"],
            counters.unmatched_events,
            self._orders.surprises,
        )

    def on_block(self, event: BlockEvent) -> None:
        change = self._ledger.apply_block(event)
        if change is None:
            return
        holders = self._ledger.book.locate(*change.key)
        self._engine.on_location(
            change.key,
            sum(r.memory_size for r in holders),
            max((r.disk_size for r in holders), default=0),
        )
        dataset = self._registry.datasets.get(change.key[0])
        if dataset is None:
            return
        if change.left_memory and dataset.managed:
            # the manager marks its own orders in the book at once: memory that leaves
            # otherwise was taken by Spark (its LRU at a put, or execution memory)
            self._ledger.counters.spark_evictions += 1
        if change.entered_memory and change.disk_size == 0:
            self._measurements.on_stored(change.key, dataset.site, change.memory_size)
        if change.key[0] in self._placement.on_disk and change.disk_size and not change.removed:
            self._judge_placed_on_disk(change, dataset.site)
        if change.entered_memory and dataset.managed and self._policy.acts:
            budget = self.memory_budget
            if change.disk_size == 0:  # a task's put (not a read promoted from disk): it is
                # judged without the share of the room that was kept for it
                self.put_room.on_stored(change.key[0], change.memory_size)
            if self._measurements.time_unknown(change.key) and self._policy.waits_for_compute_time(
                self._engine.model, change.key
            ):
                # stored before the task that computed it ended: decide once its compute
                # time (R) is measured, at that task's end (or at the job's end)
                self._awaiting[change.key] = change.executor_id
            else:
                self._admit(change.key, change.executor_id)
            if self.memory_budget < budget:
                self._enforce_budget()  # the next puts of this stage need more room

    def _judge_placed_on_disk(self, change, site: str) -> None:
        """A partition put straight to disk (:mod:`blaze.placement`): had it fitted in the
        memory budget now, the site's next generation goes back to memory and disk."""
        self._measurements.on_stored(change.key, site, change.disk_size)  # the site's sizes
        managed_used = self._ledger.book.memory_used(
            change.executor_id, self._registry.managed_ids()
        )
        fits = managed_used + change.disk_size <= self.memory_budget
        self._placement.record(site, change.key[0], Location.MEMORY if fits else Location.DISK)

    def _admit_awaiting(self, keys=None) -> None:
        for key in list(self._awaiting if keys is None else keys):
            executor = self._awaiting.pop(key, None)
            if executor is not None:
                self._admit(key, executor)

    def on_task(self, task: TaskRun) -> None:
        """A task ended: what it read (hits and misses), each partition's own compute time."""
        outcomes = self._ledger.apply_task(task)
        registry = self._registry
        own = self._measurements.on_task(
            task, outcomes, registry.rdd_of_token, registry.token_by_rdd_id
        )
        if self._awaiting:
            self._admit_awaiting([k for k in own if k in self._awaiting])

    @property
    def memory_budget(self) -> int:
        return self.put_room.budget()

    def on_stage_submitted(self, stage: StageRun) -> None:
        """A stage that stores managed partitions makes room for them before its tasks put."""
        budget = self.memory_budget
        self.put_room.on_stage_submitted(stage)
        if self.memory_budget < budget and self._policy.acts:
            self._enforce_budget()

    def on_stage_done(self, stage_id: int) -> None:
        """A stage completed: its read baselines go, its put room frees, and memory may have
        freed (MRD's prefetch reads back what is needed next)."""
        self.put_room.on_stage_done(stage_id)
        self._measurements.stage_done(stage_id)
        self._ledger.forget_stage(stage_id)
        if self._prefetcher is not None:
            self._prefetcher.run(f"stage {stage_id} completed")

    # ---- decisions ---------------------------------------------------------------------------
    def _residents(self) -> ResidentIndexes:
        """The per-executor eviction indexes, made at the first decision under pressure."""
        if self._resident_indexes is None:
            self._resident_indexes = ResidentIndexes(self._ledger, self._engine.model, self._policy)
        return self._resident_indexes

    def _admit(self, key: tuple[int, int], executor: str) -> None:
        slot = (key[0], key[1], executor)
        record = self._ledger.book.blocks.get(slot)
        if record is None or not record.memory_size:
            return
        managed = self._registry.managed_ids()
        total = self._ledger.book.memory_used(executor)
        self._ledger.note_over_budget(total - record.memory_size - self.memory_budget)
        managed_used = self._ledger.book.memory_used(executor, managed)
        budget = max(self.memory_budget - (total - managed_used), 0)
        promoting = record.disk_size > 0
        incoming = _state(record, Location.DISK if promoting else Location.MEMORY)
        costs = self._engine.model
        if managed_used <= budget and self._policy.admits_when_fits(costs, key, promoting):
            decision = self._policy.fits_decision()
        else:
            own = record.memory_size if key[0] in managed else 0
            decision = self._residents().decide(
                incoming, executor, managed_used - own, budget, lambda k: k[0] in managed
            )
        counters = self._ledger.counters
        counters.decisions[f"admit_{str(decision.admit_to).lower()}"] += 1
        dataset = self._registry.datasets.get(key[0])
        if dataset is not None and key[0] in managed:
            self._placement.record(dataset.site, key[0], decision.admit_to)
        action = _incoming_action(decision.admit_to, promoting)
        self._explain.record(
            action,
            rdd=key[0],
            split=key[1],
            executor=executor,
            policy=self._policy.name,
            rule=decision.reason,
            victims=[[v[0], v[1], str(where)] for v, where in decision.victims],
            **self._engine.inputs(key, on_disk=promoting),
        )
        for victim, where in decision.victims:
            self._evict((victim[0], victim[1], executor), where, "evicted", cause=key)
        if decision.admit_to != Location.MEMORY:
            # kept on disk (promotion refused, or written there instead of memory) or dropped
            why = "admitted" if decision.admit_to == Location.DISK else "not_admitted"
            self._evict(slot, decision.admit_to, why, cause=None)

    def _evict(self, slot, where: Location, why: str, cause) -> None:
        rdd_id, split, _ = slot
        counters = self._ledger.counters
        record = self._ledger.book.blocks.get(slot)
        if record is None or not record.memory_size:
            return
        if cause is not None:  # a victim: its own inputs, as the policy saw them
            self._explain.record(
                "spill" if where == Location.DISK else "drop",
                rdd=rdd_id,
                split=split,
                executor=slot[2],
                policy=self._policy.name,
                rule=f"victim of rdd {cause[0]} split {cause[1]}",
                **self._engine.inputs((rdd_id, split)),
            )
        if where == Location.DISK and self._policy.spills:
            # also when a disk copy exists (a promoted block): only the memory copy goes
            # placed on disk by the engine (admission or a refused promotion): it stays there
            if not self._orders.spill(rdd_id, split, slot[2], for_good=why == "admitted"):
                counters.decisions["not_carried_out"] += 1
                return
            self._ledger.mark_spilled(slot)
            self._engine.on_location((rdd_id, split), 0, record.disk_size)
            counters.decisions["spill_to_disk"] += 1
            counters.evictions_by_reason[f"{why}_to_disk"] += 1
            return
        if not self._orders.drop(rdd_id, split, slot[2]):
            counters.decisions["not_carried_out"] += 1
            return
        before = self._cached_children_costs(rdd_id, split)
        self._ledger.mark_dropped(slot)
        holders = self._ledger.book.locate(rdd_id, split)
        self._engine.on_location(
            (rdd_id, split),
            sum(r.memory_size for r in holders),
            max((r.disk_size for r in holders), default=0),
        )
        counters.decisions["drop"] += 1
        counters.evictions_by_reason[f"{why}_dropped"] += 1
        self._record_propagation(rdd_id, split, before)

    def _cached_children_costs(self, rdd_id: int, split: int) -> dict[int, dict]:
        """Inputs of the cached descendants whose R walks through ``(rdd_id, split)``."""

        def cached(node: int) -> bool:
            return bool(self._ledger.book.locate(node, split))

        children = self._engine.descendants_cached(rdd_id, cached)
        return {child: self._engine.inputs((child, split)) for child in children}

    def _record_propagation(self, rdd_id: int, split: int, before: dict[int, dict]) -> None:
        """Evicting a parent raises its cached children's R: log each change it made."""
        for child, old in before.items():
            new = self._engine.inputs((child, split))
            if new["R"] != old["R"] or new["cost"] != old["cost"]:
                self._explain.record(
                    "propagate",
                    rdd=child,
                    split=split,
                    rule=f"parent rdd {rdd_id} split {split} dropped",
                    R_before=old["R"],
                    cost_before=old["cost"],
                    **new,
                )

    def _resync(self) -> None:
        truth = [
            (b.rdd_id, b.split_index, b.executor_id, b.memory_size, b.disk_size)
            for status in self._storage.storage_status()
            for b in status.blocks
        ]
        before = {
            slot: (r.memory_size, r.disk_size) for slot, r in self._ledger.book.blocks.items()
        }
        self._ledger.resync(truth, keep=self._orders.in_flight())
        after = self._ledger.book.blocks
        for slot in set(before) | set(after):
            record = after.get(slot)
            now = (record.memory_size, record.disk_size) if record else (0, 0)
            if before.get(slot) != now:
                holders = self._ledger.book.locate(slot[0], slot[1])
                self._engine.on_location(
                    (slot[0], slot[1]),
                    sum(r.memory_size for r in holders),
                    max((r.disk_size for r in holders), default=0),
                )
        if self._policy.acts:
            self._enforce_budget()

    def _enforce_budget(self) -> None:
        """Bring every executor's memory within the budget, the policy choosing victims."""
        managed = self._registry.managed_ids()
        for executor in sorted(self._ledger.book.executors()):
            for _ in range(RESYNC_ROUNDS):
                if self._ledger.book.memory_used(executor) <= self.memory_budget:
                    break
                in_memory = [
                    r
                    for r in self._ledger.book.in_memory(executor)
                    if r.rdd_id in managed and r.key not in self._awaiting  # R still unknown
                ]
                if not in_memory:
                    break
                newest = max(in_memory, key=lambda r: (r.last_access, r.key))
                used = self._ledger.book.memory_used(executor)
                self._admit(newest.key, executor)
                if self._ledger.book.memory_used(executor) >= used:
                    break


def _state(record: BlockRecord, location: Location) -> PartitionState:
    """The policy's view of a record, rebuilt only when its size or last access changed (a
    decision under pressure lists every resident: this keeps that a list of cached objects)."""
    stamp = (record.memory_size, record.last_access, location)
    cached = record.policy_state
    if cached is not None and cached[0] == stamp:
        return cached[1]
    state = PartitionState(record.key, float(record.memory_size), location, record.last_access)
    record.policy_state = (stamp, state)
    return state


def _incoming_action(where: Location, promoting: bool) -> str:
    if where == Location.MEMORY:
        return "promote" if promoting else "admit"
    if where == Location.DISK:
        return "keep_on_disk" if promoting else "spill"
    return "drop"
