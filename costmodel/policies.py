"""Cache policies behind one interface, so the manager and the runner compare them on one path.

``get_policy(name)`` for each rule of :data:`costmodel.policy_table.RULE_NAMES`: ``"blaze"``,
``"lru"``, ``"lrc"``, ``"mrd"``, ``"mem_only"`` (LRU that drops) and ``"mem_disk"`` (LRU that
spills). Every policy answers two questions:

- ``admit(incoming, resident, budget_bytes, ctx) -> AdmissionDecision``: a partition was just
  computed (or asks to be promoted from disk); where does it go, and which resident
  partitions make room (each to DISK or NONE)? ``resident`` are the partitions of the same
  executor; those with ``location == MEMORY`` count against ``budget_bytes``.
- ``plan(states, budget_bytes, ctx) -> Plan``: the target location of every partition and
  the order in which in-memory partitions would be evicted next.

Blaze (the authors' ``LocalBlazeBlockManagerEndpoint`` + ``CostSizeRatioBased2EvictionPolicy``):

- cost <= 0 / no future reference: never admitted, never kept (target NONE);
- fits in the budget: MEMORY;
- else victims in ascending cost order, each with cost <= the incoming cost, their summed
  cost <= it, and a cost per byte below the incoming one's (the authors' cost/size ratio
  filter), until the needed space plus a small margin is freed; if that cannot free the
  space, nothing is evicted and the incoming partition is not admitted;
- a victim or a rejected partition goes to DISK unless ``comp_cost < disk_cost`` (NONE);
- costs propagate while victims are chosen: dropping a partition adds its F to its
  ancestors of the same split and its R to its descendants, which re-ranks them;
- a DISK partition asking for memory is promoted when it fits, or when its cost ranks above
  the lowest ``promotion_ratio`` (30%) of in-memory costs (then it evicts like an admission).

Baselines, as published: LRU evicts the least recently accessed first; LRC (Yu et al.,
INFOCOM 2017) the smallest count of references still to come (zero first); MRD (Perez et al.,
ICPP 2018) the largest stage distance to the next reference (no future reference first).
mem_only, mem_disk, LRC and MRD skip blocks of the incoming partition's RDD, as Spark's
MemoryStore — inside which LRC and MRD were built — does. They always admit when the space
can be freed; victims and rejected partitions are dropped, or spilled with ``spill=True``
(default for mem_disk, lrc, mrd — the baselines the paper runs with disk). Ties break on the
last access, then the key: every decision is deterministic.

Each rule is written once, as ``Policy.choose``, which reads victims lazily in eviction
order from a :class:`costmodel.eviction_index.EvictionIndex`: the manager keeps one index
per executor across decisions (the fast path), ``Policy.admit`` over a list of residents
builds a short-lived one. ``plan`` reads the same order with the same cost propagation.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from costmodel.eviction_index import EvictionIndex, RankFn
from costmodel.policy_table import RULE_NAMES
from costmodel.types import MIB, Location, PartitionCost, PartitionKey
from lineage.walk import is_ancestor

__all__ = [
    "POLICY_NAMES",
    "AdmissionDecision",
    "BlazePolicy",
    "CostSource",
    "LrcPolicy",
    "LruPolicy",
    "MrdPolicy",
    "PartitionState",
    "Plan",
    "Policy",
    "PolicyContext",
    "TableCosts",
    "get_policy",
]

POLICY_NAMES = RULE_NAMES


@dataclass(frozen=True)
class PartitionState:
    """A cached partition as the manager sees it on one executor."""

    key: PartitionKey
    size_bytes: float
    location: Location = Location.NONE
    last_access: float = 0.0  # any increasing clock; larger = more recent (LRU)
    executor_id: str | None = None

    def __post_init__(self) -> None:
        if self.size_bytes < 0:
            raise ValueError(f"partition {self.key}: size_bytes must be >= 0")
        object.__setattr__(self, "location", Location(self.location))


@dataclass(frozen=True)
class AdmissionDecision:
    """Where the incoming partition goes, and which residents move out (in this order)."""

    admit_to: Location
    victims: tuple[tuple[PartitionKey, Location], ...] = ()
    reason: str = ""

    @property
    def freed_keys(self) -> tuple[PartitionKey, ...]:
        return tuple(key for key, _ in self.victims)


@dataclass(frozen=True)
class Plan:
    """Target location per partition, plus the eviction order of the memory-resident ones.

    ``eviction_order`` lists the partitions planned for MEMORY, first = the next victim if
    space is needed. ``evictions`` lists the partitions to move out of memory now, in order.
    """

    states: Mapping[PartitionKey, Location]
    eviction_order: tuple[PartitionKey, ...]
    evictions: tuple[tuple[PartitionKey, Location], ...] = ()
    memory_bytes: float = 0.0


@runtime_checkable
class CostSource(Protocol):
    """What policies ask about partitions (implemented by :class:`costmodel.cost.CostModel`)."""

    def cost(self, key: PartitionKey, on_disk: bool | None = None) -> PartitionCost: ...

    def reference_count(self, key: PartitionKey) -> int: ...

    def next_reference(self, key: PartitionKey) -> int | None: ...

    def is_ancestor(self, ancestor: int, descendant: int) -> bool: ...


class TableCosts:
    """A :class:`CostSource` from plain tables: tests, and callers with precomputed costs.

    ``costs`` gives each partition's terms (``on_disk`` there is ignored: the caller's
    ``on_disk`` argument decides); reference counts default to F, next references to None
    when F is 0 and to 0 otherwise; ``parents`` (rdd -> parent rdds) enables propagation.
    """

    def __init__(
        self,
        costs: Mapping[PartitionKey, PartitionCost],
        *,
        reference_counts: Mapping[PartitionKey, int] | None = None,
        next_references: Mapping[PartitionKey, int | None] | None = None,
        parents: Mapping[int, Sequence[int]] | None = None,
    ) -> None:
        self._costs = dict(costs)
        self._refs = dict(reference_counts or {})
        self._next = dict(next_references or {})
        self._parents = {k: tuple(v) for k, v in (parents or {}).items()}

    def cost(self, key: PartitionKey, on_disk: bool | None = None) -> PartitionCost:
        try:
            base = self._costs[key]
        except KeyError:
            raise KeyError(f"no cost known for partition {key}") from None
        if on_disk is None or on_disk == base.on_disk:
            return base
        return PartitionCost(
            base.future_refs,
            base.recompute_ms,
            base.write_ms,
            base.read_ms,
            on_disk=on_disk,
            size_bytes=base.size_bytes,
        )

    def reference_count(self, key: PartitionKey) -> int:
        if key in self._refs:
            return self._refs[key]
        return int(self.cost(key).future_refs)

    def next_reference(self, key: PartitionKey) -> int | None:
        if key in self._next:
            return self._next[key]
        return 0 if self.cost(key).future_refs > 0 else None

    def is_ancestor(self, ancestor: int, descendant: int) -> bool:
        return is_ancestor(ancestor, descendant, lambda rdd: self._parents.get(rdd, ()))


@dataclass
class PolicyContext:
    """Everything a policy may consult besides the partitions themselves.

    ``margin_bytes``: extra space Blaze frees beyond the need (None: min(5 MiB, 5% of the
    budget) — the authors used a fixed 5 MiB, too much for small test budgets).
    """

    costs: CostSource | None = None
    margin_bytes: float | None = None
    promotion_ratio: float = 0.3
    extras: dict = field(default_factory=dict)

    def margin(self, budget_bytes: float) -> float:
        if self.margin_bytes is not None:
            return self.margin_bytes
        return min(5 * MIB, 0.05 * budget_bytes)

    def require_costs(self, policy: str) -> CostSource:
        if self.costs is None:
            raise ValueError(f"policy {policy!r} needs PolicyContext(costs=...) (a CostModel)")
        return self.costs


Candidate = Callable[[PartitionKey], bool]  # which residents may be victims at all


def _check_budget(budget_bytes: float) -> None:
    if not budget_bytes >= 0:
        raise ValueError(f"budget_bytes must be >= 0, got {budget_bytes!r}")


def _everyone(key: PartitionKey) -> bool:
    return True


class Policy:
    """Base class: a name, an eviction order and the rule that reads it.

    Subclasses are stateless and deterministic. ``ranking(ctx)`` is the eviction order
    (smallest rank = evicted first) an :class:`EvictionIndex` keeps; ``choose`` is the
    admission rule over such an index; ``admit`` and ``plan`` answer over plain lists.
    """

    name = "policy"

    def ranking(self, ctx: PolicyContext) -> RankFn:
        raise NotImplementedError

    def choose(
        self,
        incoming: PartitionState,
        index: EvictionIndex,
        used_bytes: float,
        budget_bytes: float,
        ctx: PolicyContext,
        candidate: Candidate = _everyone,
    ) -> AdmissionDecision:
        """Where ``incoming`` goes, with victims read from ``index`` (the residents of its
        executor in this policy's order). ``used_bytes``: the memory the ``candidate``
        residents hold besides the incoming partition."""
        raise NotImplementedError

    def admit(
        self,
        incoming: PartitionState,
        resident: Sequence[PartitionState],
        budget_bytes: float,
        ctx: PolicyContext | None = None,
    ) -> AdmissionDecision:
        """``choose`` over a list of residents (those in MEMORY count and may be victims)."""
        ctx = ctx or PolicyContext()
        index = EvictionIndex(self.ranking(ctx))
        used = 0.0
        for state in resident:
            if state.location == Location.MEMORY and state.key != incoming.key:
                index.put(state.key, state.size_bytes, state.last_access)
                used += state.size_bytes
        return self.choose(incoming, index, used, budget_bytes, ctx)

    def plan(
        self,
        states: Sequence[PartitionState],
        budget_bytes: float,
        ctx: PolicyContext | None = None,
    ) -> Plan:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class _OrderedPolicy(Policy):
    """Baselines: a fixed eviction order; victims are dropped or (``spill``) spilled."""

    def __init__(self, name: str, *, spill: bool, skip_same_rdd: bool = False) -> None:
        self.name = name
        self.spill = spill
        self.skip_same_rdd = skip_same_rdd

    def rank(self, key: PartitionKey, last_access: float, costs: CostSource | None) -> tuple:
        """Sort key: smallest first = evicted first."""
        raise NotImplementedError

    def ranking(self, ctx: PolicyContext) -> RankFn:
        costs = ctx.costs
        return lambda key, access: self.rank(key, access, costs)

    def _out(self) -> Location:
        return Location.DISK if self.spill else Location.NONE

    def _rejected(self, incoming: PartitionState) -> Location:
        return Location.DISK if incoming.location == Location.DISK else self._out()

    def choose(self, incoming, index, used_bytes, budget_bytes, ctx, candidate=_everyone):
        _check_budget(budget_bytes)
        need = used_bytes + incoming.size_bytes - budget_bytes
        if need <= 0:
            return AdmissionDecision(Location.MEMORY, (), "fits")
        if incoming.size_bytes > budget_bytes:
            return AdmissionDecision(self._rejected(incoming), (), "larger than the budget")
        out = self._out()
        victims: list[tuple[PartitionKey, Location]] = []
        freed = 0.0
        stream = index.ascending()
        try:
            for key, _, size in stream:
                if freed >= need:
                    break
                if key == incoming.key or not candidate(key):
                    continue
                if self.skip_same_rdd and key[0] == incoming.key[0]:
                    continue
                victims.append((key, out))
                freed += size
        finally:
            stream.close()
        if freed < need:  # like Spark's MemoryStore: evict nothing if it cannot make room
            return AdmissionDecision(self._rejected(incoming), (), "cannot free enough memory")
        return AdmissionDecision(Location.MEMORY, tuple(victims), "evicted by " + self.name)

    def plan(self, states, budget_bytes, ctx=None) -> Plan:
        _check_budget(budget_bytes)
        costs = (ctx or PolicyContext()).costs
        ordered = sorted(states, key=lambda s: self.rank(s.key, s.last_access, costs))
        total = sum(s.size_bytes for s in ordered)
        target: dict[PartitionKey, Location] = {}
        evicted: list[PartitionState] = []
        index = 0
        while total > budget_bytes and index < len(ordered):
            state = ordered[index]
            evicted.append(state)
            total -= state.size_bytes
            target[state.key] = (
                Location.DISK if state.location == Location.DISK or self.spill else Location.NONE
            )
            index += 1
        kept = ordered[index:]
        for state in kept:
            target[state.key] = Location.MEMORY
        evictions = tuple((s.key, target[s.key]) for s in evicted if s.location == Location.MEMORY)
        return Plan(target, tuple(s.key for s in kept), evictions, total)


class LruPolicy(_OrderedPolicy):
    """Least recently used first (Spark's own MemoryStore order)."""

    def __init__(self, name: str = "lru", *, spill: bool = False, skip_same_rdd: bool = False):
        super().__init__(name, spill=spill, skip_same_rdd=skip_same_rdd)

    def rank(self, key, last_access, costs):
        return (last_access, key)


class LrcPolicy(_OrderedPolicy):
    """Least reference count first — references still to come; zero first (ties: LRU)."""

    def __init__(self, name: str = "lrc", *, spill: bool = True, skip_same_rdd: bool = True):
        super().__init__(name, spill=spill, skip_same_rdd=skip_same_rdd)

    def rank(self, key, last_access, costs):
        if costs is None:
            raise ValueError(f"policy {self.name!r} needs PolicyContext(costs=...) (a CostModel)")
        return (costs.reference_count(key), last_access, key)


class MrdPolicy(_OrderedPolicy):
    """Most distant next reference first; no future reference at all goes first."""

    def __init__(self, name: str = "mrd", *, spill: bool = True, skip_same_rdd: bool = True):
        super().__init__(name, spill=spill, skip_same_rdd=skip_same_rdd)

    def rank(self, key, last_access, costs):
        if costs is None:
            raise ValueError(f"policy {self.name!r} needs PolicyContext(costs=...) (a CostModel)")
        nxt = costs.next_reference(key)
        if nxt is None:
            return (0, 0, last_access, key)
        return (1, -nxt, last_access, key)


class _CostOrder:
    """Partitions ascending in (cost, key), read lazily from an index, with the costs that
    propagation raises while victims are taken.

    ``price(key)`` is a partition's cost (the index ranks by ``(price(key).cost, key)``);
    ``eligible(key, cost, size)`` says whether it may be taken at all (checked with the
    cost it had before any propagation). Propagation only raises costs, so the index's
    order stays a lower bound: raised partitions are re-queued in a small heap and the two
    streams merge, touching only the partitions a decision reads.
    """

    def __init__(
        self,
        index: EvictionIndex,
        source: CostSource,
        price: Callable[[PartitionKey], PartitionCost],
        eligible: Callable[[PartitionKey, float, float], bool],
    ) -> None:
        self.index, self.source, self.price, self.eligible = index, source, price, eligible
        self.stream: Iterator = index.ascending()
        self.peeked: tuple[tuple, PartitionKey] | None = None
        self.exhausted = False
        self.heap: list[tuple[float, PartitionKey]] = []
        self.current: dict[PartitionKey, PartitionCost] = {}  # fetched or raised
        self.fetched: set[PartitionKey] = set()
        self.taken: set[PartitionKey] = set()
        self.live: dict[PartitionKey, bool] = {}

    def close(self) -> None:
        self.stream.close()

    def _peek(self, beyond: Callable[[float], bool]) -> tuple[tuple, PartitionKey] | None:
        while self.peeked is None and not self.exhausted:
            item = next(self.stream, None)
            if item is None or beyond(item[1][0]):
                self.exhausted = True  # ascending: nothing later can be taken
                break
            key, rank, size = item
            if self.eligible(key, rank[0], size):
                self.peeked = (rank, key)
        return self.peeked

    def head(self, beyond: Callable[[float], bool] = lambda cost: False) -> PartitionKey | None:
        """The cheapest partition not taken yet (None when none is left, or when the index
        reaches a cost at which ``beyond`` says nothing more can be taken — monotone)."""
        while True:
            peeked = self._peek(beyond)
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
                cost = self.current.setdefault(key, self.price(key))
                heapq.heappush(self.heap, (cost.cost, key))
                continue
            return self.heap[0][1] if self.heap else None

    def take(self, key: PartitionKey, destination: Location) -> PartitionCost:
        """Take ``key`` (it goes to ``destination``); a drop raises its relatives' costs."""
        cost = self.current[key]
        self.taken.add(key)
        if destination == Location.NONE:
            self._dropped(key, cost)
        return cost

    def _relatives(self, split: int):
        for key in sorted(self.index.split_keys(split)):
            if key in self.taken:
                continue
            original = self.price(key)
            if self.eligible(key, original.cost, self.index.size_of(key)):
                yield key, self.current.get(key, original)

    def _dropped(self, key: PartitionKey, cost: PartitionCost) -> None:
        """``key`` will be recomputed: its relatives of the same split now cost more.

        An ancestor gains the dropped partition's references (it is read once more per
        reference); a descendant someone will read gains its recomputation time.
        """
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


class BlazePolicy(Policy):
    """The published cost-based admission and eviction (see the module docstring)."""

    def __init__(self, name: str = "blaze", *, size_ratio_filter: bool = True):
        self.name = name
        self.size_ratio_filter = size_ratio_filter

    def ranking(self, ctx: PolicyContext) -> RankFn:
        source = ctx.require_costs(self.name)
        return lambda key, access: (source.cost(key, on_disk=False).cost, key)

    def choose(self, incoming, index, used_bytes, budget_bytes, ctx, candidate=_everyone):
        _check_budget(budget_bytes)
        source = ctx.require_costs(self.name)
        promoting = incoming.location == Location.DISK
        mine = source.cost(incoming.key, on_disk=promoting)
        if not mine.has_future:
            return AdmissionDecision(Location.NONE, (), "no future reference")
        if mine.cost <= 0:  # free to recompute and to store: not worth memory
            return AdmissionDecision(mine.fallback(), (), "costs nothing")
        need = used_bytes + incoming.size_bytes - budget_bytes
        if need <= 0:
            return AdmissionDecision(Location.MEMORY, (), "fits")
        rejected = Location.DISK if promoting else mine.fallback()
        if incoming.size_bytes > budget_bytes:
            return AdmissionDecision(rejected, (), "larger than the budget")

        def others(key: PartitionKey) -> bool:
            return key != incoming.key and candidate(key)

        if promoting and not self._promotable(mine, index, ctx, others):
            return AdmissionDecision(Location.DISK, (), "cost in the lowest in-memory share")
        limit = mine.cost
        largest = limit * index.largest_size()

        def eligible(key: PartitionKey, value: float, size: float) -> bool:
            if not others(key) or value > limit:
                return False
            if self.size_ratio_filter:  # denser in cost per byte than the incoming one: keep
                return value <= 0 or limit * size > incoming.size_bytes * value
            return True

        total = 0.0

        def beyond(value: float) -> bool:
            """No partition at this cost or above can be the next victim: the sum would
            pass the incoming cost, or (cost-per-byte filter) even the largest resident is
            too dense. The same float expressions as ``eligible``, monotone in ``value``."""
            if value > limit or total + value > limit:
                return True
            return (
                self.size_ratio_filter and value > 0 and not largest > incoming.size_bytes * value
            )

        queue = _CostOrder(index, source, lambda k: source.cost(k, on_disk=False), eligible)
        victims: list[tuple[PartitionKey, Location]] = []
        freed = 0.0
        target = need + ctx.margin(budget_bytes)
        try:
            while freed < target:
                key = queue.head(beyond)
                lowest = None if key is None else queue.current[key].cost
                if lowest is None or lowest > limit or total + lowest > limit:
                    break  # ascending order: nothing later qualifies either
                destination = queue.current[key].fallback()
                cost = queue.take(key, destination)
                victims.append((key, destination))
                freed += index.size_of(key)
                total += cost.cost
        finally:
            queue.close()
        if freed < need:
            return AdmissionDecision(rejected, (), "victims would cost more than it saves")
        return AdmissionDecision(Location.MEMORY, tuple(victims), "evicted lower-cost partitions")

    @staticmethod
    def _promotable(
        mine: PartitionCost, index: EvictionIndex, ctx: PolicyContext, others: Candidate
    ) -> bool:
        """A partition on disk comes back to memory when its cost reaches the lowest
        ``promotion_ratio`` share of the in-memory costs (read in ascending order)."""
        count = sum(1 for key in index if others(key))
        if not count:
            return True
        position = int((count - 1) * ctx.promotion_ratio)
        stream = index.ascending()
        try:
            seen = 0
            for key, rank, _ in stream:
                if not others(key):
                    continue
                if seen == position:
                    return mine.cost >= rank[0]
                seen += 1
        finally:
            stream.close()
        return True

    def plan(self, states, budget_bytes, ctx=None) -> Plan:
        _check_budget(budget_bytes)
        ctx = ctx or PolicyContext()
        source = ctx.require_costs(self.name)
        target: dict[PartitionKey, Location] = {}
        on_disk = {s.key for s in states if s.location == Location.DISK}

        def price(key: PartitionKey) -> PartitionCost:
            # ranked by the cost at its current location, as the authors' analyzer does
            return source.cost(key, on_disk=key in on_disk)

        index = EvictionIndex(lambda key, access: (price(key).cost, key))
        dead_in_memory: list[PartitionKey] = []
        in_memory: set[PartitionKey] = set()
        total = 0.0
        for state in sorted(states, key=lambda s: s.key):
            if state.location == Location.MEMORY:
                in_memory.add(state.key)
            if price(state.key).has_future:
                index.put(state.key, max(state.size_bytes, 1e-9), state.last_access)
                total += state.size_bytes
            else:
                target[state.key] = Location.NONE
                if state.location == Location.MEMORY:
                    dead_in_memory.append(state.key)
        sizes = {s.key: s.size_bytes for s in states}
        queue = _CostOrder(index, source, price, lambda key, value, size: True)
        evicted: list[PartitionKey] = []
        kept: list[PartitionKey] = []
        try:
            while (key := queue.head()) is not None:
                if total > budget_bytes:
                    target[key] = queue.current[key].fallback()
                    queue.take(key, target[key])
                    evicted.append(key)
                    total -= sizes[key]
                else:
                    queue.take(key, Location.MEMORY)
                    kept.append(key)
                    target[key] = Location.MEMORY
        finally:
            queue.close()
        evictions = tuple((key, Location.NONE) for key in dead_in_memory) + tuple(
            (key, target[key]) for key in evicted if key in in_memory
        )
        return Plan(target, tuple(kept), evictions, total)


_FACTORIES: dict[str, Callable[..., Policy]] = {
    "blaze": lambda **kw: BlazePolicy("blaze", **kw),
    "lru": lambda **kw: LruPolicy("lru", **kw),
    "mem_only": lambda **kw: LruPolicy("mem_only", spill=False, skip_same_rdd=True, **kw),
    "mem_disk": lambda **kw: LruPolicy("mem_disk", spill=True, skip_same_rdd=True, **kw),
    "lrc": lambda **kw: LrcPolicy("lrc", **kw),
    "mrd": lambda **kw: MrdPolicy("mrd", **kw),
}


def get_policy(name: str, **options) -> Policy:
    """The policy called ``name`` (case-insensitive); ``options`` e.g. ``spill=False``."""
    key = str(name).strip().lower()
    if key not in _FACTORIES:
        raise ValueError(f"unknown cache policy {name!r} (known: {', '.join(POLICY_NAMES)})")
    try:
        return _FACTORIES[key](**options)
    except TypeError as exc:
        raise TypeError(f"policy {key!r}: {exc}") from None
