"""Disk copies of cached blocks, and whether each was read before it went: dead writes.

Why: a block written to disk costs W whether or not anything reads it back; a write never
followed by a read of that copy was wasted (the cost model's F said a read would come, or
a policy spilled without asking). The ledger reports each such *dead write* — a disk copy
removed, unpersisted or dropped without a read since it was written — plus the copies still
unread now (at the end of a run every unread copy is dead).
"""

from __future__ import annotations

__all__ = ["DiskCopies"]

Slot = tuple[int, int, str]  # (rdd_id, split_index, executor_id)
NAMED = 20  # dead writes the report names (the count covers all of them)


class DiskCopies:
    """Written disk copies not read since, and the count of those that died unread."""

    def __init__(self) -> None:
        self._unread: set[Slot] = set()
        self._died_since_settled: set[Slot] = set()
        self._died: dict[Slot, None] = {}  # the first NAMED dead, in the order they died
        self.dead = 0

    def written(self, slot: Slot) -> None:
        self._unread.add(slot)

    def read(self, slot: Slot) -> None:
        """A task read the copy — also one removed since, when the task's report came after
        the removal (the driver unpersists as soon as an action returns): not dead then."""
        self._unread.discard(slot)
        if slot in self._died_since_settled:
            self._died_since_settled.discard(slot)
            self._died.pop(slot, None)
            self.dead -= 1

    def gone(self, slot: Slot) -> None:
        """The copy was removed (dropped, unpersisted, lost): dead if it was never read."""
        if slot in self._unread:
            self._unread.discard(slot)
            self._died_since_settled.add(slot)
            if len(self._died) < NAMED:
                self._died[slot] = None
            self.dead += 1

    def settle(self) -> None:
        """Every read before now has been reported (a job's end): the dead stay dead."""
        self._died_since_settled.clear()

    def report(self) -> dict[str, int | list[str]]:
        """The counts, and the blocks of the first dead writes (then the unread copies) by
        name, ``rdd_<id>_<split>@<executor>`` — which dataset's copies died is what a decision
        log cannot say (it logs decisions, not reads)."""
        named = [*self._died, *sorted(self._unread)][:NAMED]
        return {
            "dead_writes": self.dead + len(self._unread),
            "unread_disk_copies": len(self._unread),
            "dead_write_blocks": [
                f"rdd_{rdd}_{split}@{executor}" for rdd, split, executor in named
            ],
        }
