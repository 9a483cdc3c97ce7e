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

:func:`select_blaze` and :func:`select_ordered` answer exactly as
:class:`costmodel.policies.BlazePolicy` / the baselines do over the full list of residents,
reading the index lazily in ascending order (checked on random states by
``tests/unit/test_eviction_index.py``).
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable, Hashable, Iterator

from costmodel.policies import (
    AdmissionDecision,
    BlazePolicy,
    CostSource,
    LrcPolicy,
    MrdPolicy,
    PartitionState,
    Policy,
    PolicyContext,
    _check_budget,
    _OrderedPolicy,
)
from costmodel.types import Location, PartitionCost, PartitionKey

__all__ = ["EvictionIndex", "rank_function", "select_blaze", "select_ordered"]

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


def rank_function(policy: Policy, ctx: PolicyContext) -> RankFn:
    """The index's sort key for ``policy``: the same order its ``admit`` sorts residents in."""
    if isinstance(policy, BlazePolicy):
        source = ctx.require_costs(policy.name)
        return lambda key, access: (source.cost(key, on_disk=False).cost, key)
    if isinstance(policy, LrcPolicy):
        source = ctx.require_costs(policy.name)
        return lambda key, access: (source.reference_count(key), access, key)
    if isinstance(policy, MrdPolicy):
        source = ctx.require_costs(policy.name)

        def mrd(key: PartitionKey, access: float) -> tuple:
            nxt = source.next_reference(key)
            return (0, 0, access, key) if nxt is None else (1, -nxt, access, key)

        return mrd
    return lambda key, access: (access, key)


def select_ordered(
    policy: _OrderedPolicy,
    incoming: PartitionState,
    index: EvictionIndex,
    used_bytes: float,
    budget_bytes: float,
    candidate: Callable[[PartitionKey], bool] = lambda key: True,
) -> AdmissionDecision:
    """The baselines' admission: victims in rank order until the space is freed.

    ``used_bytes``: memory held by the residents that count (``candidate`` ones, not the
    incoming partition).
    """
    _check_budget(budget_bytes)
    need = used_bytes + incoming.size_bytes - budget_bytes
    if need <= 0:
        return AdmissionDecision(Location.MEMORY, (), "fits")
    if incoming.size_bytes > budget_bytes:
        return AdmissionDecision(policy._rejected(incoming), (), "larger than the budget")
    out = policy._out()
    victims: list[tuple[PartitionKey, Location]] = []
    freed = 0.0
    stream = index.ascending()
    try:
        for key, _, size in stream:
            if freed >= need:
                break
            if key == incoming.key or not candidate(key):
                continue
            if policy.skip_same_rdd and key[0] == incoming.key[0]:
                continue
            victims.append((key, out))
            freed += size
    finally:
        stream.close()
    if freed < need:
        return AdmissionDecision(policy._rejected(incoming), (), "cannot free enough memory")
    return AdmissionDecision(Location.MEMORY, tuple(victims), "evicted by " + policy.name)


def select_blaze(
    policy: BlazePolicy,
    incoming: PartitionState,
    index: EvictionIndex,
    used_bytes: float,
    budget_bytes: float,
    ctx: PolicyContext,
    candidate: Callable[[PartitionKey], bool] = lambda key: True,
) -> AdmissionDecision | None:
    """Blaze's admission of a newly computed partition, reading victims lazily by cost.

    None for a promotion from disk: its rule compares with a quantile of every in-memory
    cost, which the caller answers with :meth:`BlazePolicy.admit` over the full list.
    """
    _check_budget(budget_bytes)
    if incoming.location == Location.DISK:
        return None
    source = ctx.require_costs(policy.name)
    mine = source.cost(incoming.key, on_disk=False)
    if not mine.has_future:
        return AdmissionDecision(Location.NONE, (), "no future reference")
    if mine.cost <= 0:
        return AdmissionDecision(mine.fallback(), (), "costs nothing")
    need = used_bytes + incoming.size_bytes - budget_bytes
    if need <= 0:
        return AdmissionDecision(Location.MEMORY, (), "fits")
    rejected = mine.fallback()
    if incoming.size_bytes > budget_bytes:
        return AdmissionDecision(rejected, (), "larger than the budget")
    queue = _LazyCandidates(policy, incoming, mine.cost, index, source, candidate)
    try:
        victims, freed = queue.select(mine.cost, need + ctx.margin(budget_bytes))
    finally:
        queue.close()
    if freed < need:
        return AdmissionDecision(rejected, (), "victims would cost more than it saves")
    return AdmissionDecision(Location.MEMORY, tuple(victims), "evicted lower-cost partitions")


class _LazyCandidates:
    """Blaze's eligible victims in ascending (cost, key), fetched from the index on demand,
    with the costs raised by propagation while victims are chosen (costs only grow, so the
    index's order stays a lower bound and the two streams merge)."""

    def __init__(self, policy, incoming, limit, index, source: CostSource, candidate) -> None:
        self.policy, self.incoming, self.limit = policy, incoming, limit
        self.index, self.source, self.candidate = index, source, candidate
        self.stream = index.ascending()
        self.peeked: tuple[tuple, PartitionKey] | None = None
        self.exhausted = False
        self.heap: list[tuple[float, PartitionKey]] = []
        self.current: dict[PartitionKey, PartitionCost] = {}  # fetched or raised
        self.fetched: set[PartitionKey] = set()
        self.taken: set[PartitionKey] = set()
        self.live: dict[PartitionKey, bool] = {}
        self.total = 0.0  # summed cost of the victims so far
        self.largest = limit * index.largest_size()

    def close(self) -> None:
        self.stream.close()

    def eligible(self, key: PartitionKey, value: float, size: float) -> bool:
        if key == self.incoming.key or not self.candidate(key) or value > self.limit:
            return False
        if self.policy.size_ratio_filter:
            return value <= 0 or self.limit * size > self.incoming.size_bytes * value
        return True

    def _beyond(self, value: float) -> bool:
        """No partition at this cost or above can be the next victim: the sum would pass the
        incoming cost, or (cost-per-byte filter) even the largest resident is too dense. The
        same float expressions as the exact tests, which are monotone in ``value``."""
        if value > self.limit or self.total + value > self.limit:
            return True
        return (
            self.policy.size_ratio_filter
            and value > 0
            and not self.largest > self.incoming.size_bytes * value
        )

    def _peek(self) -> tuple[tuple, PartitionKey] | None:
        while self.peeked is None and not self.exhausted:
            item = next(self.stream, None)
            if item is None or self._beyond(item[1][0]):
                self.exhausted = True  # ascending: nothing later can be taken
                break
            key, rank, size = item
            if self.eligible(key, rank[0], size):
                self.peeked = (rank, key)
        return self.peeked

    def _head(self) -> PartitionKey | None:
        while True:
            peeked = self._peek()
            while self.heap:
                cost, key = self.heap[0]
                if key in self.taken or cost != self.current[key].cost:
                    heapq.heappop(self.heap)
                    continue
                break
            if peeked is not None and (not self.heap or peeked[0] < self.heap[0]):
                key = peeked[1]
                self.peeked = None
                self.fetched.add(key)
                cost = self.current.setdefault(key, self.source.cost(key, on_disk=False))
                heapq.heappush(self.heap, (cost.cost, key))
                continue
            return self.heap[0][1] if self.heap else None

    def select(self, budget_cost: float, target: float):
        victims: list[tuple[PartitionKey, Location]] = []
        freed = total = 0.0
        while freed < target:
            self.total = total
            key = self._head()
            lowest = None if key is None else self.current[key].cost
            if lowest is None or lowest > budget_cost or total + lowest > budget_cost:
                break
            cost = self.current[key]
            self.taken.add(key)
            destination = cost.fallback()
            victims.append((key, destination))
            freed += self.index.size_of(key)
            total += cost.cost
            if destination == Location.NONE:
                self._dropped(key, cost)
        return victims, freed

    def _relatives(self, split: int):
        for key in sorted(self.index.split_keys(split)):
            if key in self.taken:
                continue
            original = self.source.cost(key, on_disk=False)
            if self.eligible(key, original.cost, self.index.size_of(key)):
                yield key, self.current.get(key, original)

    def _dropped(self, key: PartitionKey, cost: PartitionCost) -> None:
        rdd_id, split = key
        if cost.future_refs > 0:
            for other, now in list(self._relatives(split)):
                if self.source.is_ancestor(other[0], rdd_id):
                    self._update(other, now.adjusted(extra_refs=cost.future_refs))
        if cost.recompute_ms > 0:
            for other, now in list(self._relatives(split)):
                live = self.live.setdefault(other, now.future_refs > 0 and not now.on_disk)
                if live and self.source.is_ancestor(rdd_id, other[0]):
                    self._update(other, now.adjusted(extra_recompute_ms=cost.recompute_ms))

    def _update(self, key: PartitionKey, updated: PartitionCost) -> None:
        self.current[key] = updated
        if key in self.fetched:
            heapq.heappush(self.heap, (updated.cost, key))
