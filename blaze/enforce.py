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

At every job end the ledger is corrected from Spark's storage status (lost or reordered
events, a block removed by someone else) and the budget is enforced again.
"""

from __future__ import annotations

import time

from blaze.eviction import ResidentIndexes
from blaze.ledger import BlockRecord
from costmodel.policies import PartitionState
from costmodel.types import Location
from lineage.events import BlockEvent, JobRun, RddUnpersisted, StageRun, TaskRun, TaskStarted

__all__ = ["EnforcementMixin"]

RESYNC_ROUNDS = 64


class EnforcementMixin:
    """The event worker's handlers and the admission/eviction of :class:`BlazeManager`."""

    def _handle(self, event) -> None:
        if self._deferred and isinstance(event, (TaskRun, JobRun)):
            self._retry_deferred()
        if isinstance(event, BlockEvent):
            self._on_block(event)
        elif isinstance(event, TaskStarted):
            self._engine.on_task_start(event.stage_id, event.partition_index)
        elif isinstance(event, TaskRun):
            self._on_task(event)
        elif isinstance(event, StageRun):
            if not event.completed:  # the submitted event (see StageRun.completed)
                self._ledger.apply_stage(event)
            self._engine.on_stage(event)
            if event.completed:
                self._inputs.stage_done(event.stage_id)
                self._prefetch(f"stage {event.stage_id} completed")
        elif isinstance(event, JobRun):
            self._engine.on_job(event)
            if event.succeeded is None:
                self._on_job_started(event)
            else:
                self._admit_awaiting()
                self._resync()
        elif isinstance(event, RddUnpersisted):
            self._forget_rdd(event.rdd_id, "user_unpersist")

    def _on_block(self, event: BlockEvent) -> None:
        change = self._ledger.apply_block(event)
        if change is None:
            return
        holders = self._ledger.locate(*change.key)
        self._engine.on_location(
            change.key,
            sum(r.memory_size for r in holders),
            max((r.disk_size for r in holders), default=0),
        )
        dataset = self._datasets.get(change.key[0])
        if dataset is None:
            return
        if change.entered_memory and change.disk_size == 0:
            self._site_sizes[dataset.site][change.key[1]] = change.memory_size
            observed = self._observed.setdefault(change.key[0], set())
            if change.key[1] not in observed:
                observed.add(change.key[1])
                try:
                    self._predictors.observe_rdd(
                        change.key[0], dataset.site, change.key[1], change.memory_size
                    )
                except Exception as exc:
                    self._count_error("predict", exc)
        if change.entered_memory and dataset.managed and self.policy.acts:
            if self._time_unknown(change.key, dataset.site):
                # stored before the task that computed it ended: decide once its compute
                # time (R) is measured, at that task's end (or at the job's end)
                self._awaiting[change.key] = change.executor_id
            else:
                self._admit(change.key, change.executor_id)

    def _time_unknown(self, key, site: str) -> bool:
        """Neither measured nor predictable yet: R would be a guess, so wait for its task."""
        model = self._engine.model
        measured = model.measurements_of(key)
        if measured is not None and measured.compute_ms is not None:
            return False
        spec = model.rdds.get(key[0])
        return spec is None or self._estimate(spec, key[1]) is None

    def _admit_awaiting(self, keys=None) -> None:
        for key in list(self._awaiting if keys is None else keys):
            executor = self._awaiting.pop(key, None)
            if executor is not None:
                self._admit(key, executor)

    def _on_task(self, task: TaskRun) -> None:
        outcomes = self._ledger.apply_task(task)
        own = self._inputs.on_task(task, outcomes, self._rdd_of_token, self._token_by_rdd_id)
        self.disk_cost = self._engine.model.disk
        for key, own_ms in own.items():
            dataset = self._datasets.get(key[0])
            if dataset is not None:
                samples = self._site_compute_ms[dataset.site]
                samples.append(own_ms)
                del samples[:-64]
        if self._awaiting:
            self._admit_awaiting([k for k in own if k in self._awaiting])

    def _prefetch(self, why: str) -> None:
        """Memory may have freed: the policy's prefetch (MRD) reads back what is needed next."""
        if self._prefetcher is not None:
            self._prefetcher.run(self.memory_budget, self._managed_ids(), self._explain, why)

    # ---- decisions ---------------------------------------------------------------------------
    def _managed_ids(self) -> set[int]:
        return {rid for rid, d in self._datasets.items() if d.managed}

    def _residents(self) -> ResidentIndexes:
        """The per-executor eviction indexes, made at the first decision under pressure."""
        indexes = getattr(self, "_resident_indexes", None)
        if indexes is None:
            indexes = ResidentIndexes(self._ledger, self._engine.model, self.policy)
            self._resident_indexes = indexes
        return indexes

    def _admit(self, key: tuple[int, int], executor: str) -> None:
        slot = (key[0], key[1], executor)
        record = self._ledger.blocks.get(slot)
        if record is None or not record.memory_size:
            return
        managed = self._managed_ids()
        total = self._ledger.memory_used(executor)
        self._ledger.note_over_budget(total - record.memory_size - self.memory_budget)
        managed_used = self._ledger.memory_used(executor, managed)
        budget = max(self.memory_budget - (total - managed_used), 0)
        promoting = record.disk_size > 0
        incoming = _state(record, Location.DISK if promoting else Location.MEMORY)
        costs = self._engine.model
        if managed_used <= budget and self.policy.admits_when_fits(costs, key, promoting):
            decision = self.policy.fits_decision()
        else:
            own = record.memory_size if key[0] in managed else 0
            decision = self._residents().decide(
                incoming, executor, managed_used - own, budget, lambda k: k[0] in managed
            )
        counters = self._ledger.counters
        counters.decisions[f"admit_{str(decision.admit_to).lower()}"] += 1
        action = _incoming_action(decision.admit_to, promoting)
        self._explain.record(
            action,
            rdd=key[0],
            split=key[1],
            executor=executor,
            policy=self.policy.name,
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
        record = self._ledger.blocks.get(slot)
        if record is None or not record.memory_size:
            return
        if cause is not None:  # a victim: its own inputs, as the policy saw them
            self._explain.record(
                "spill" if where == Location.DISK else "drop",
                rdd=rdd_id,
                split=split,
                executor=slot[2],
                policy=self.policy.name,
                rule=f"victim of rdd {cause[0]} split {cause[1]}",
                **self._engine.inputs((rdd_id, split)),
            )
        if where == Location.DISK and self.policy.spills:
            # also when a disk copy exists (a promoted block): drop only the memory copy
            started = time.perf_counter()
            outcome = self._bridge.spill_to_disk(rdd_id, split)
            if outcome == "spilled" and not record.disk_size:  # a write: W as it happened
                self._inputs.observe_spill(record.memory_size, _ms_since(started))
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
                self._engine.on_location((rdd_id, split), 0, record.disk_size)
                counters.decisions["spill_to_disk"] += 1
                counters.evictions_by_reason[f"{why}_to_disk"] += 1
                return
            counters.decisions["spill_degraded_to_drop"] += 1
        self._deferred.pop(slot, None)
        before = self._cached_children_costs(rdd_id, split)
        self._bridge.remove_block(rdd_id, split)
        self._ledger.mark_dropped(slot)
        holders = self._ledger.locate(rdd_id, split)
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
            return bool(self._ledger.locate(node, split))

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

    def _retry_deferred(self) -> None:
        for slot, why in list(self._deferred.items()):
            self._evict(slot, Location.DISK, why, cause=None)

    def _resync(self) -> None:
        truth = [
            (b.rdd_id, b.split_index, b.executor_id, b.memory_size, b.disk_size)
            for status in self._bridge.storage_status()
            for b in status.blocks
        ]
        before = {slot: (r.memory_size, r.disk_size) for slot, r in self._ledger.blocks.items()}
        self._ledger.resync(truth)
        after = self._ledger.blocks
        for slot in set(before) | set(after):
            record = after.get(slot)
            now = (record.memory_size, record.disk_size) if record else (0, 0)
            if before.get(slot) != now:
                holders = self._ledger.locate(slot[0], slot[1])
                self._engine.on_location(
                    (slot[0], slot[1]),
                    sum(r.memory_size for r in holders),
                    max((r.disk_size for r in holders), default=0),
                )
        if not self.policy.acts:
            return
        managed = self._managed_ids()
        for executor in sorted(self._ledger.executors()):
            for _ in range(RESYNC_ROUNDS):
                if self._ledger.memory_used(executor) <= self.memory_budget:
                    break
                in_memory = [r for r in self._ledger.in_memory(executor) if r.rdd_id in managed]
                if not in_memory:
                    break
                newest = max(in_memory, key=lambda r: (r.last_access, r.key))
                used = self._ledger.memory_used(executor)
                self._admit(newest.key, executor)
                if self._ledger.memory_used(executor) >= used:
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


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _incoming_action(where: Location, promoting: bool) -> str:
    if where == Location.MEMORY:
        return "promote" if promoting else "admit"
    if where == Location.DISK:
        return "keep_on_disk" if promoting else "spill"
    return "drop"
