"""Where each RDD block lives, indexed every way the manager asks (pure Python).

Why its own class: the ledger (:mod:`blaze.ledger`) interprets Spark's events — misses, hits,
dead writes, the manager's own orders — and needs to ask "what is on this executor", "where is
this partition", "how much memory does this RDD hold there" at every event. Scanning every
block for each would make one event cost as much as the cache is large; this book keeps the
indexes and running memory totals that answer each of them in time independent of the number
of cached partitions, and is the only code that changes them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

__all__ = ["BlockBook", "BlockRecord", "Key", "Slot"]

Key = tuple[int, int]  # (rdd_id, split_index)
Slot = tuple[int, int, str]  # (rdd_id, split_index, executor_id)


@dataclass
class BlockRecord:
    """One RDD block on one executor."""

    rdd_id: int
    split_index: int
    executor_id: str
    memory_size: int = 0
    disk_size: int = 0
    last_access: int = 0  # the ledger's logical clock
    disk_estimate: int = 0  # spilled by the manager; disk size not yet confirmed by an event
    # (stamp, PartitionState) cached by the enforcement path; not part of the record's value
    policy_state: object = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> Key:
        return (self.rdd_id, self.split_index)

    @property
    def slot(self) -> Slot:
        return (self.rdd_id, self.split_index, self.executor_id)


class BlockBook:
    """The blocks, by slot, executor, partition and RDD, with memory totals per executor
    and per (executor, RDD)."""

    def __init__(self) -> None:
        self.blocks: dict[Slot, BlockRecord] = {}
        self._by_executor: dict[str, dict[Slot, BlockRecord]] = defaultdict(dict)
        self._by_key: dict[Key, dict[str, BlockRecord]] = defaultdict(dict)
        self._by_rdd: dict[int, set[Slot]] = defaultdict(set)
        self._memory: Counter = Counter()  # executor -> bytes in memory
        self._memory_by_rdd: dict[str, Counter] = defaultdict(Counter)  # executor -> rdd -> bytes
        # slots whose memory size or last access changed since an eviction index last
        # looked (None: nobody keeps one, so nothing is collected)
        self.touched: set[Slot] | None = None

    # ---- changes ------------------------------------------------------------------------
    def put(self, record: BlockRecord) -> None:
        slot = record.slot
        self.blocks[slot] = record
        self._by_executor[record.executor_id][slot] = record
        self._by_key[record.key][record.executor_id] = record
        self._by_rdd[record.rdd_id].add(slot)
        self._account(record, record.memory_size)

    def remove(self, slot: Slot) -> BlockRecord | None:
        record = self.blocks.pop(slot, None)
        if record is None:
            return None
        self._account(record, -record.memory_size)
        self._by_executor[record.executor_id].pop(slot, None)
        holders = self._by_key.get(record.key)
        if holders is not None:
            holders.pop(record.executor_id, None)
            if not holders:
                del self._by_key[record.key]
        slots = self._by_rdd.get(record.rdd_id)
        if slots is not None:
            slots.discard(slot)
            if not slots:
                del self._by_rdd[record.rdd_id]
        return record

    def set_sizes(self, record: BlockRecord, memory: int, disk: int) -> None:
        self._account(record, memory - record.memory_size)
        record.memory_size, record.disk_size = memory, disk

    def touch(self, record: BlockRecord) -> None:
        if self.touched is not None:
            self.touched.add(record.slot)

    def _account(self, record: BlockRecord, delta: int) -> None:
        if delta:
            self.touch(record)
            self._memory[record.executor_id] += delta
            self._memory_by_rdd[record.executor_id][record.rdd_id] += delta

    # ---- questions ----------------------------------------------------------------------
    def memory_used(self, executor_id: str, rdd_ids: set[int] | None = None) -> int:
        """Bytes in memory on an executor (of ``rdd_ids`` only, if given): O(1) / O(rdds)."""
        if rdd_ids is None:
            return self._memory.get(executor_id, 0)
        by_rdd = self._memory_by_rdd.get(executor_id, {})
        return sum(v for r, v in by_rdd.items() if r in rdd_ids)

    def in_memory(self, executor_id: str) -> list[BlockRecord]:
        return [r for r in self._by_executor.get(executor_id, {}).values() if r.memory_size]

    def on_disk_only(self, executor_id: str) -> list[BlockRecord]:
        """The executor's blocks with a disk copy and no memory copy."""
        records = self._by_executor.get(executor_id, {}).values()
        return [r for r in records if r.disk_size and not r.memory_size]

    def executors(self) -> set[str]:
        return {e for e, slots in self._by_executor.items() if slots}

    def slots_of(self, rdd_id: int) -> list[Slot]:
        return list(self._by_rdd.get(rdd_id, ()))

    def cached_partitions(self, rdd_id: int) -> set[int]:
        return {slot[1] for slot in self._by_rdd.get(rdd_id, ())}

    def cached_partition_counts(self) -> dict[int, int]:
        """Distinct cached partitions per RDD holding any (what a job's lineage walk stops at)."""
        return {
            rdd_id: len(self.cached_partitions(rdd_id))
            for rdd_id, slots in self._by_rdd.items()
            if slots
        }

    def bytes_by_executor(self) -> dict[str, dict[str, int]]:
        """Memory and disk bytes held per executor, by executor id (for the report)."""
        held: dict[str, dict[str, int]] = defaultdict(lambda: {"memory": 0, "disk": 0})
        for record in self.blocks.values():
            held[record.executor_id]["memory"] += record.memory_size
            held[record.executor_id]["disk"] += record.disk_size
        return {executor: dict(sizes) for executor, sizes in sorted(held.items())}

    def locate(self, rdd_id: int, split_index: int) -> list[BlockRecord]:
        return list(self._by_key.get((rdd_id, split_index), {}).values())
