"""The in-memory partitions of one executor, kept in a policy's eviction order between decisions.

Why: under memory pressure a decision needs only the first few partitions of the eviction
order, but listing and ranking every resident costs O(n log n) per block event, so a manager
with 10k cached partitions spent tens of milliseconds per arrival. The index keeps a heap of
``(rank, key, version)`` with lazy invalidation: a partition whose rank may have changed gets
a fresh entry with a new version, and entries whose version is no longer current are dropped
when they surface. Ranks change when the cost model forgets a memoised term of a partition
(the caller passes those keys to :meth:`EvictionIndex.invalidate`), when a block's size or last
access changes (:meth:`EvictionIndex.put`), or all at once (a new job, a new lineage: the
``epoch`` moves) — then the heap is rebuilt once, at the next decision. An entry whose rank
moved without notice is re-queued at its current rank when it surfaces.

The index only orders; it decides nothing. Every policy's rule (:mod:`costmodel.policies`)
reads its victims from an index: the manager keeps one per executor across decisions, and
``Policy.admit`` over a plain list of residents builds a short-lived one — so each rule is
written once.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable, Hashable, Iterator

from costmodel.types import PartitionKey

__all__ = ["EvictionIndex", "RankFn"]

RankFn = Callable[[PartitionKey, float], tuple]  # (key, last access) -> sort key, smallest first


class EvictionIndex:
    """Resident in-memory partitions of one executor, ascending in a policy's eviction rank."""

    def __init__(self, rank: RankFn, epoch: Callable[[], Hashable] = lambda: 0) -> None:
        self._rank = rank
        self._epoch_of = epoch
        self._epoch: Hashable = None
        self._entries: dict[PartitionKey, tuple[float, float]] = {}  # key -> (size, access)
        self._by_split: dict[int, set[PartitionKey]] = {}
        self._version: dict[PartitionKey, int] = {}
        self._heap: list[tuple[tuple, PartitionKey, int]] = []
        self._dirty: set[PartitionKey] = set()
        self._counter = itertools.count()
        self._size_counts: Counter[float] = Counter()
        self._largest: list[float] = []  # max-heap of sizes (negated), stale ones skipped

    def largest_size(self) -> float:
        """The largest resident block (0 when empty): bounds Blaze's cost-per-byte filter."""
        largest, counts = self._largest, self._size_counts
        while largest and not counts.get(-largest[0]):
            heapq.heappop(largest)
        return -largest[0] if largest else 0.0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def size_of(self, key: PartitionKey) -> float:
        return self._entries[key][0]

    def __iter__(self) -> Iterator[PartitionKey]:
        """The resident keys, in no particular order (a copy: safe to change the index)."""
        return iter(list(self._entries))

    def split_keys(self, split: int) -> set[PartitionKey]:
        """Resident partitions of one split (the relatives cost propagation may touch)."""
        return self._by_split.get(split, set())

    def put(self, key: PartitionKey, size: float, last_access: float) -> None:
        """``key`` is in memory with this size and last access (a size <= 0 removes it)."""
        if size <= 0:
            self.discard(key)
            return
        old = self._entries.get(key)
        if old is not None:
            self._forget_size(old[0])
        size = float(size)
        self._entries[key] = (size, float(last_access))
        if not self._size_counts[size]:
            heapq.heappush(self._largest, -size)
        self._size_counts[size] += 1
        self._by_split.setdefault(key[1], set()).add(key)
        self._dirty.add(key)

    def _forget_size(self, size: float) -> None:
        self._size_counts[size] -= 1
        if not self._size_counts[size]:
            del self._size_counts[size]

    def discard(self, key: PartitionKey) -> None:
        old = self._entries.pop(key, None)
        if old is None:
            return
        self._forget_size(old[0])
        self._version.pop(key, None)
        self._dirty.discard(key)
        same_split = self._by_split.get(key[1])
        if same_split is not None:
            same_split.discard(key)
            if not same_split:
                del self._by_split[key[1]]

    def invalidate(self, keys) -> None:
        """The ranks of ``keys`` may have changed (non-residents are ignored)."""
        entries = self._entries
        self._dirty.update(key for key in keys if key in entries)

    def _refresh(self) -> None:
        epoch = self._epoch_of()
        rank, entries = self._rank, self._entries
        if epoch != self._epoch or len(self._heap) > 2 * len(entries) + 1024:
            self._epoch = epoch
            version = next(self._counter)
            self._version = dict.fromkeys(entries, version)
            self._heap = [(rank(key, access), key, version) for key, (_, access) in entries.items()]
            heapq.heapify(self._heap)
        else:
            for key in self._dirty:
                version = next(self._counter)
                self._version[key] = version
                heapq.heappush(self._heap, (rank(key, entries[key][1]), key, version))
        self._dirty.clear()

    def ascending(self) -> Iterator[tuple[PartitionKey, tuple, float]]:
        """``(key, rank, size)`` of the residents, smallest rank first, read lazily.

        The entries read are put back when the iteration ends (close the iterator): reading
        the first k of n costs O(k log n), whatever the caller then decides.
        """
        self._refresh()
        heap, versions, entries = self._heap, self._version, self._entries
        read: list[tuple[tuple, PartitionKey, int]] = []
        try:
            while heap:
                entry = heapq.heappop(heap)
                rank, key, version = entry
                if versions.get(key) != version:
                    continue  # superseded or no longer resident
                size, access = entries[key]
                current = self._rank(key, access)
                if current != rank:  # moved without notice: re-queue at its current rank
                    fresh = next(self._counter)
                    versions[key] = fresh
                    heapq.heappush(heap, (current, key, fresh))
                    continue
                read.append(entry)
                yield key, rank, size
        finally:
            for entry in read:
                heapq.heappush(heap, entry)
