"""The manager's book of cached blocks and the counters of its report (pure Python).

Why a separate ledger: Spark tells us what happened only after the fact and possibly out of
order or incompletely (the listener bus drops events when its queue is full). The ledger is
the manager's best knowledge of where every RDD block lives, fed by block events and
corrected by :meth:`Ledger.resync` from Spark's storage status; every decision reads it and
every counter of :meth:`BlazeManager.report` is kept here. No Spark import: the unit tests
drive it with hand-made :mod:`lineage.events` records.

Hit/miss accounting (Spark has no cache-hit metric), per partition actually computed or read:
every store of a block that was nowhere on its executor is one computation — a *miss*, and a
*recomputation* if that partition was computed before. When a task of stage ``s`` finishes on
partition ``i``, the ledger walks down the stage's RDD graph from its final RDD the way Spark's
``RDD.iterator`` does, mapping ``i`` to the parent partitions each RDD reads
(:mod:`blaze.partition_map`: one-to-one, a union's ranges, a co-partitioned union's same
index, a cartesian's pair). Each persisted partition reached is looked at: present and not
stored by this task, a *hit* (from disk if it was on disk only; Spark then promotes it, which
shows up as a promotion event) and the walk stops there, as Spark's does; absent and not
stored, a computation that Spark did not keep (a miss). Why a walk and not "every persisted
RDD with as many partitions as the stage has tasks": PySpark's ``join`` is a union, whose
task index is not its parents' partition index, so that rule missed every cached read of a
join (Spark's pagerank example: 0 hits counted, 11 made). Where the mapping is unknown (a
coalesce, a cogroup) the walk stops: those reads are not counted, never guessed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from blaze.block_book import BlockBook, BlockRecord, Key, Slot
from blaze.counters import Counters
from blaze.disk_copies import DiskCopies
from blaze.partition_map import StageGraph
from blaze.size_score import SizeScore
from lineage.events import BlockEvent, StageRun, TaskRun

__all__ = ["Change", "Ledger"]

# RDDs unpersisted here awaiting Spark's own event of the unpersist, at most: the bound
# holds should such events be lost (the listener bus drops events when its queue is full)
UNPERSISTED_REMEMBERED = 4096


@dataclass(frozen=True)
class Change:
    """What one block event changed, from the manager's point of view."""

    key: Key
    executor_id: str
    entered_memory: bool  # newly stored in memory, or promoted from disk
    left_memory: bool
    removed: bool  # gone from this executor entirely
    memory_size: int
    disk_size: int


class Ledger:
    """What Spark's events mean for the cache: the blocks (``book``, a :class:`BlockBook`,
    indexed so that one block event costs the same at 100 or 100,000 cached partitions), the
    hits and misses of each task, and the report's counters. Not thread-safe by itself: the
    manager feeds it from one worker thread and reads it under its own lock."""

    def __init__(self) -> None:
        self.book = BlockBook()
        self.counters = Counters()
        self.clock = 0
        self._stored_since_look: set[Key] = set()
        self._promoted_since_look: dict[Key, int] = {}
        # splits computed and stored once, per RDD (a second store is a recomputation); kept
        # until the program can no longer reach the dataset (``forget_computed``)
        self._computed: dict[int, set[int]] = defaultdict(set)
        self._stage_graphs: dict[int, StageGraph] = {}  # stages that read a persisted RDD
        # slots the manager took out of the book before Spark's removal event came
        self._removed_by_manager: set[Slot] = set()
        # blocks of RDDs unpersisted since the last job end, as they were: the driver
        # unpersists right after an action returns, before the listener has had that job's
        # last task ends, whose reads of them were hits all the same
        self._unpersisted: dict[Key, list[BlockRecord]] = {}
        # slots read back by a prefetch before the report of their spill came: the memory
        # copy the report must not take away (slot -> its bytes)
        self._prefetched_before_spill_report: dict[Slot, int] = {}
        self.disk_copies = DiskCopies()
        self.size_score = SizeScore()  # predicted sizes against the stored ones
        # unpersists applied by this driver (the program's through the wrapper, the manager's
        # own) whose event Spark has not delivered yet, per RDD id, oldest first: a block
        # report of theirs until then was sent before the unpersist reached the block (a
        # spill or a read promoting it, just before) and is of a block gone, not one to book
        self._unpersist_reports_due: dict[int, int] = {}

    def _remove(self, slot: Slot) -> BlockRecord | None:
        """A block leaves the book: with it its disk copy and a prefetch awaiting its spill."""
        self._prefetched_before_spill_report.pop(slot, None)
        record = self.book.remove(slot)
        if record is not None:
            self.disk_copies.gone(slot)
        return record

    # ---- block state --------------------------------------------------------------------
    def tick(self) -> int:
        self.clock += 1
        return self.clock

    def apply_block(self, event: BlockEvent) -> Change | None:
        """Apply one block event; returns what changed (None for non-RDD blocks).

        A block newly stored (nothing of it was on this executor before) is one computation
        of that partition: a miss, and a recomputation if the partition was computed before.
        """
        if event.rdd_id is None or event.split_index is None:
            return None
        self.counters.events["block"] += 1
        key = (event.rdd_id, event.split_index)
        slot = (event.rdd_id, event.split_index, event.executor_id)
        record = self.book.blocks.get(slot)
        if record is None and event.rdd_id in self._unpersist_reports_due:
            self._removed_by_manager.discard(slot)
            self.counters.events["block_after_unpersist"] += 1
            return None
        before_mem = record.memory_size if record else 0
        before_disk = record.disk_size if record else 0
        valid = event.storage_level.is_valid
        mem, disk = event.memory_held, event.disk_held
        confirms_spill = record is not None and record.disk_estimate > 0 and disk > 0
        if confirms_spill:  # the report of the manager's own spill
            mem = self._prefetched_before_spill_report.pop(slot, 0)
            self.counters.disk_bytes_written += disk - record.disk_estimate
            record.disk_estimate = 0
        removed_by_manager = slot in self._removed_by_manager
        self._removed_by_manager.discard(slot)
        if not valid or (mem == 0 and disk == 0):
            if record is not None:
                self._remove(slot)
            elif not removed_by_manager:  # the book never had it: its store event was lost
                self.counters.unmatched_events += 1
        else:
            if record is None:
                record = BlockRecord(event.rdd_id, event.split_index, event.executor_id)
                self.book.put(record)
            self.book.set_sizes(record, mem, disk)
            record.last_access = self.tick()
            self.book.touch(record)
        entered = before_mem == 0 and mem > 0
        left = before_mem > 0 and mem == 0
        removed = (before_mem > 0 or before_disk > 0) and mem == 0 and disk == 0
        if disk > 0 and before_disk == 0 and not confirms_spill:
            self.counters.disk_bytes_written += disk
            self.disk_copies.written(slot)
        elif disk == 0 and before_disk > 0 and not removed:
            self.disk_copies.gone(slot)
        if entered and before_disk > 0:
            self._promoted_since_look[key] = before_disk
            self.disk_copies.read(slot)
        elif before_mem == 0 and before_disk == 0 and (mem > 0 or disk > 0):
            self._stored_since_look.add(key)
            self._count_computation(key)
            self.size_score.observe(key, mem or disk)
        if left or removed:  # the manager's own orders changed the book before their event
            reason = "spark_spill" if (left and disk > 0) else "external_or_spark"
            self.counters.evictions_by_reason[reason] += 1
        return Change(key, event.executor_id, entered, left, removed, mem, disk)

    def _count_computation(self, key: Key) -> None:
        self.counters.misses += 1
        rdd_id, split = key
        if split in self._computed.get(rdd_id, ()):
            self.counters.recomputed_partitions += 1
        self._computed[rdd_id].add(split)

    def mark_spilled(self, slot: Slot) -> None:
        """The manager moved this block to disk: free its memory in the book right away."""
        record = self.book.blocks.get(slot)
        if record is None:
            return
        if not record.disk_size:
            record.disk_estimate = record.memory_size
            self.counters.disk_bytes_written += record.memory_size
            self.disk_copies.written(slot)
            self.book.set_sizes(record, 0, record.memory_size)
        else:
            self.book.set_sizes(record, 0, record.disk_size)

    def note_prefetch(self, slot: Slot, read_bytes: int) -> None:
        """The manager read this spilled block back into memory (MRD's prefetch): a disk
        read now, so the later reference is a memory hit."""
        record = self.book.blocks.get(slot)
        self.counters.disk_bytes_read += read_bytes
        self.counters.decisions["prefetch"] += 1
        self.disk_copies.read(slot)
        if record is not None and not record.memory_size:
            if record.disk_estimate:
                # the spill's report is still on its way: it confirms the disk copy and
                # keeps this memory copy (were it read as a drop, the prefetch's own report
                # after it would look like a read promoting the block — a disk hit)
                self._prefetched_before_spill_report[slot] = read_bytes
            self.book.set_sizes(record, read_bytes, record.disk_size)
            record.last_access = self.tick()

    def mark_dropped(self, slot: Slot) -> None:
        """The manager removed this block: it is gone from the book right away."""
        if self._remove(slot) is not None:
            self._removed_by_manager.add(slot)

    def forget_rdd(self, rdd_id: int, reason: str) -> int:
        """An RDD was unpersisted: drop its blocks from the book; returns how many."""
        slots = self.book.slots_of(rdd_id)
        for slot in slots:
            record = self._remove(slot)
            if record is not None:
                self._unpersisted.setdefault(record.key, []).append(record)
        self._removed_by_manager.update(slots)
        if slots:
            self.counters.evictions_by_reason[reason] += len(slots)
        return len(slots)

    def unpersist_applied(self, rdd_id: int) -> None:
        """This driver unpersisted the RDD: its block reports are not booked until Spark's
        event of that unpersist comes (``unpersist_reported``)."""
        due = self._unpersist_reports_due
        due[rdd_id] = due.pop(rdd_id, 0) + 1
        if len(due) > UNPERSISTED_REMEMBERED:  # an event lost must not hold memory for good
            del due[next(iter(due))]

    def unpersist_reported(self, rdd_id: int) -> bool:
        """Spark's event of an unpersist came; returns whether it is of one applied here.
        Once every such event has come, the RDD's reports are booked again: each report sent
        before the unpersist has come too, so one after it is of a block stored anew (the
        program may have persisted the RDD again before the event came)."""
        due = self._unpersist_reports_due.get(rdd_id, 0)
        if due > 1:
            self._unpersist_reports_due[rdd_id] = due - 1
        else:
            self._unpersist_reports_due.pop(rdd_id, None)
        return due > 0

    @property
    def computed_held(self) -> int:
        """RDDs whose computed splits the book remembers (see ``forget_computed``)."""
        return len(self._computed)

    def forget_computed(self, rdd_ids) -> None:
        """The program can no longer reach these datasets (the registry let them go): no
        store of theirs can come again, so a long program's book stays its live part."""
        for rdd_id in rdd_ids:
            self._computed.pop(rdd_id, None)

    def on_job_end(self) -> None:
        """A job's end came through the listener: every task end before it has too, so no
        task still to report read the blocks unpersisted before it."""
        self._unpersisted.clear()
        self.disk_copies.settle()

    def note_over_budget(self, excess_bytes: int) -> None:
        if excess_bytes > self.counters.max_over_budget_bytes:
            self.counters.max_over_budget_bytes = excess_bytes

    def resync(
        self, truth: list[tuple[int, int, str, int, int]], keep: set[Slot] = frozenset()
    ) -> int:
        """Replace the book by Spark's storage status ``(rdd, split, executor, mem, disk)``.

        A block the ledger holds but Spark does not was removed by someone else (or its
        event was lost): it is treated as dropped. Slots in ``keep`` (an order on its way)
        keep the book's view, and so does a block the book holds in memory and on disk that
        Spark shows on disk (its master keeps one copy's status). Returns the number of
        corrections.
        """
        self.counters.resyncs += 1
        self._removed_by_manager.clear()  # Spark's view replaces the book's
        fresh = {
            (r, s, e): (m, d)
            for r, s, e, m, d in truth
            if (m > 0 or d > 0) and (r, s, e) not in keep and r not in self._unpersist_reports_due
        }
        corrections = 0
        for slot in list(self.book.blocks):
            if slot not in fresh and slot not in keep:
                self._remove(slot)
                self.counters.evictions_by_reason["external_or_spark"] += 1
                corrections += 1
        for slot, (mem, disk) in fresh.items():
            record = self.book.blocks.get(slot)
            if record is None:
                self.book.put(BlockRecord(*slot, memory_size=mem, disk_size=disk))
                corrections += 1
            elif (record.memory_size, record.disk_size) != (mem, disk):
                if record.memory_size and mem == 0 and record.disk_size == disk:
                    # held in memory and on disk (a promoted block): Spark's master records
                    # such a block's disk copy only, so its status cannot show the memory one
                    continue
                self.book.set_sizes(record, mem, disk)
                corrections += 1
        self.counters.resync_corrections += corrections
        return corrections

    # ---- stages and tasks: hits ----------------------------------------------------------
    def apply_stage(self, stage: StageRun) -> None:
        """Remember the RDD graph of a stage that reads a persisted RDD (for its tasks)."""
        self.counters.events["stage"] += 1
        graph = StageGraph.of(stage)
        if graph.persisted:
            self._stage_graphs[stage.stage_id] = graph
        else:
            self._stage_graphs.pop(stage.stage_id, None)

    @property
    def stage_graphs_held(self) -> int:
        return len(self._stage_graphs)

    def forget_stage(self, stage_id: int) -> None:
        """A stage completed: its tasks have all been applied (a program of thousands of
        stages keeps only the running ones' graphs)."""
        self._stage_graphs.pop(stage_id, None)

    def apply_task(self, task: TaskRun) -> list[tuple[Key, str]]:
        """Classify each persisted RDD partition the task read or computed, in the order
        Spark's iterators reached them; returns ``(key, outcome)`` pairs.

        ``miss``: the task computed the partition (its store was counted when the block
        event came, or it was computed and not stored); ``memory_hit`` / ``disk_hit``: it
        read the stored block (and not the block's own inputs).
        """
        self.counters.events["task"] += 1
        graph = self._stage_graphs.get(task.stage_id)
        if graph is None or not task.successful:
            return []
        return list(graph.walk(task.partition_index, self._look))

    def _look(self, key: Key) -> str:
        """What reading persisted partition ``key`` in a task was: a miss or a hit."""
        records = self.book.locate(*key) or self._unpersisted.get(key, [])
        if key in self._stored_since_look:
            self._stored_since_look.discard(key)  # counted as a miss when it was stored
            outcome = "miss"
        elif key in self._promoted_since_look:
            self.counters.disk_bytes_read += self._promoted_since_look.pop(key)
            outcome = "disk_hit"
        elif any(r.memory_size for r in records):
            outcome = "memory_hit"
        elif records:
            self.counters.disk_bytes_read += max(r.disk_size for r in records)
            outcome = "disk_hit"
            for record in records:
                self.disk_copies.read((record.rdd_id, record.split_index, record.executor_id))
        else:  # computed, but Spark did not store it (no room): still a computation
            self._count_computation(key)
            outcome = "miss"
        if outcome != "miss":
            self.counters.hits += 1
            if outcome == "memory_hit":
                self.counters.memory_hits += 1
            else:
                self.counters.disk_hits += 1
        for record in records:
            record.last_access = self.tick()
            self.book.touch(record)
        return outcome

    # ---- report ---------------------------------------------------------------------------
    def report(self) -> dict:
        return {
            **self.counters.report(),
            **self.disk_copies.report(),
            "predicted_vs_observed": self.size_score.report(),
            "cached_bytes_by_executor": self.book.bytes_by_executor(),
        }
