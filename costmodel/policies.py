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

Baselines: LRU evicts the least recently accessed first (mem_only
and mem_disk also skip blocks of the incoming partition's RDD, as Spark's MemoryStore does);
LRC the smallest reference count first; MRD the farthest next reference first (no future
reference first). They always admit when the space can be freed; victims and rejected
partitions are dropped, or spilled with ``spill=True`` (default for mem_disk, lrc, mrd — the
baselines the paper runs with disk). All decisions are deterministic: ties break on the key.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from costmodel.policy_table import RULE_NAMES
from costmodel.types import MIB, Location, PartitionCost, PartitionKey

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
        seen: set[int] = set()
        stack = list(self._parents.get(descendant, ()))
        while stack:
            node = stack.pop()
            if node == ancestor:
                return True
            if node not in seen:
                seen.add(node)
                stack.extend(self._parents.get(node, ()))
        return False


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


def _check_budget(budget_bytes: float) -> None:
    if not budget_bytes >= 0:
        raise ValueError(f"budget_bytes must be >= 0, got {budget_bytes!r}")


def _costs_of(source: CostSource, keys: list[PartitionKey]) -> list[PartitionCost]:
    """In-memory costs of many partitions; uses the source's batch call when it has one."""
    batch = getattr(source, "costs", None)
    if callable(batch):
        return batch(keys, False)
    return [source.cost(key, on_disk=False) for key in keys]


def _horizon(values: np.ndarray, sizes: np.ndarray, cover: float) -> float | None:
    """The smallest cost such that partitions costing no more hold ``cover`` bytes; None if
    all of them together hold less (then the whole set is needed anyway)."""
    if len(values) == 0 or float(sizes.sum()) <= cover:
        return None
    order = np.argsort(values, kind="stable")
    reach = np.searchsorted(np.cumsum(sizes[order]), cover)
    return float(values[order[min(int(reach), len(order) - 1)]])


def _memory_bytes(states: Sequence[PartitionState], exclude: PartitionKey | None = None) -> float:
    return sum(s.size_bytes for s in states if s.location == Location.MEMORY and s.key != exclude)


class Policy:
    """Base class: a name and the two questions. Subclasses are stateless and deterministic."""

    name = "policy"

    def admit(
        self,
        incoming: PartitionState,
        resident: Sequence[PartitionState],
        budget_bytes: float,
        ctx: PolicyContext | None = None,
    ) -> AdmissionDecision:
        raise NotImplementedError

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
    """Baselines: a fixed eviction ranking; victims are dropped or (``spill``) spilled."""

    skip_same_rdd = False

    def __init__(self, name: str, *, spill: bool) -> None:
        self.name = name
        self.spill = spill

    def rank(self, state: PartitionState, ctx: PolicyContext | None) -> tuple:
        """Sort key: smallest first = evicted first."""
        raise NotImplementedError

    def _out(self) -> Location:
        return Location.DISK if self.spill else Location.NONE

    def admit(self, incoming, resident, budget_bytes, ctx=None) -> AdmissionDecision:
        _check_budget(budget_bytes)
        used = _memory_bytes(resident, exclude=incoming.key)
        need = used + incoming.size_bytes - budget_bytes
        if need <= 0:
            return AdmissionDecision(Location.MEMORY, (), "fits")
        if incoming.size_bytes > budget_bytes:
            return AdmissionDecision(self._rejected(incoming), (), "larger than the budget")
        candidates = [
            s
            for s in resident
            if s.location == Location.MEMORY
            and s.key != incoming.key
            and not (self.skip_same_rdd and s.key[0] == incoming.key[0])
        ]
        candidates.sort(key=lambda s: self.rank(s, ctx))
        victims: list[tuple[PartitionKey, Location]] = []
        freed = 0.0
        for state in candidates:
            if freed >= need:
                break
            victims.append((state.key, self._out()))
            freed += state.size_bytes
        if freed < need:  # like Spark's MemoryStore: evict nothing if it cannot make room
            return AdmissionDecision(self._rejected(incoming), (), "cannot free enough memory")
        return AdmissionDecision(Location.MEMORY, tuple(victims), "evicted by " + self.name)

    def _rejected(self, incoming: PartitionState) -> Location:
        if incoming.location == Location.DISK:
            return Location.DISK
        return self._out()

    def plan(self, states, budget_bytes, ctx=None) -> Plan:
        _check_budget(budget_bytes)
        ordered = sorted(states, key=lambda s: self.rank(s, ctx))
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
        super().__init__(name, spill=spill)
        self.skip_same_rdd = skip_same_rdd

    def rank(self, state, ctx):
        return (state.last_access, state.key)


class LrcPolicy(_OrderedPolicy):
    """Least reference count first (ties: least recently used)."""

    def __init__(self, name: str = "lrc", *, spill: bool = True):
        super().__init__(name, spill=spill)

    def rank(self, state, ctx):
        refs = (ctx or PolicyContext()).require_costs(self.name).reference_count(state.key)
        return (refs, state.last_access, state.key)


class MrdPolicy(_OrderedPolicy):
    """Most distant next reference first; no future reference at all goes first."""

    def __init__(self, name: str = "mrd", *, spill: bool = True):
        super().__init__(name, spill=spill)

    def rank(self, state, ctx):
        nxt = (ctx or PolicyContext()).require_costs(self.name).next_reference(state.key)
        if nxt is None:
            return (0, 0, state.last_access, state.key)
        return (1, -nxt, state.last_access, state.key)


class _Candidates:
    """Eviction candidates in ascending (cost, key) order, with cost propagation.

    One C-level sort (``numpy.lexsort``) orders all candidates; costs raised by propagation
    are re-queued in a small heap and the two streams are merged, so a decision over
    thousands of partitions touches in Python only the few it takes.
    """

    def __init__(
        self,
        keys: list[PartitionKey],
        costs: list[PartitionCost],
        sizes: list[float],
        source: CostSource,
        values: np.ndarray | None = None,
    ):
        self.keys, self.costs, self.sizes, self.source = keys, costs, sizes, source
        n = len(keys)
        if values is None:
            values = np.fromiter((c.cost for c in costs), dtype=float, count=n)
        rdds = np.fromiter((k[0] for k in keys), dtype=np.int64, count=n)
        splits = np.fromiter((k[1] for k in keys), dtype=np.int64, count=n)
        self.order: list[int] = np.lexsort((splits, rdds, values)).tolist()
        self.pos = 0
        self.heap: list[tuple[float, PartitionKey, int]] = []  # re-queued after propagation
        self.updated: set[int] = set()
        self.taken: set[int] = set()
        # split -> candidate indices, built on first need: every candidate (to add references
        # to ancestors), and only those someone will read (to add work to descendants)
        self._all_by_split: dict[int, list[int]] | None = None
        self._live_by_split: dict[int, list[int]] | None = None

    def _head(self) -> int | None:
        order, taken, updated = self.order, self.taken, self.updated
        while self.pos < len(order) and (order[self.pos] in taken or order[self.pos] in updated):
            self.pos += 1
        static = order[self.pos] if self.pos < len(order) else None
        while self.heap:
            cost, _, index = self.heap[0]
            if index in taken or cost != self.costs[index].cost:
                heapq.heappop(self.heap)  # chosen already, or raised again since
                continue
            if static is None or (cost, self.keys[index]) < (
                self.costs[static].cost,
                self.keys[static],
            ):
                return index
            break
        return static

    def peek_cost(self) -> float | None:
        index = self._head()
        return None if index is None else self.costs[index].cost

    def pop(self) -> tuple[PartitionKey, PartitionCost, float] | None:
        index = self._head()
        if index is None:
            return None
        self.taken.add(index)
        return self.keys[index], self.costs[index], self.sizes[index]

    def dropped(self, key: PartitionKey, cost: PartitionCost) -> None:
        """``key`` will be recomputed: its relatives of the same split now cost more.

        An ancestor gains the dropped partition's references (it is read once more per
        reference); a descendant gains its recomputation time. Updates that cannot change a
        cost (no references to add, or a descendant nobody will read) are skipped.
        """
        rdd_id, split = key
        if cost.future_refs > 0:
            if self._all_by_split is None:
                self._all_by_split = {}
                for index, other in enumerate(self.keys):
                    self._all_by_split.setdefault(other[1], []).append(index)
            for index in self._all_by_split.get(split, ()):
                if index not in self.taken and self.source.is_ancestor(self.keys[index][0], rdd_id):
                    self._update(index, self.costs[index].adjusted(extra_refs=cost.future_refs))
        if cost.recompute_ms > 0:
            if self._live_by_split is None:
                self._live_by_split = {}
                for index, current in enumerate(self.costs):
                    if current.future_refs > 0 and not current.on_disk:
                        self._live_by_split.setdefault(self.keys[index][1], []).append(index)
            for index in self._live_by_split.get(split, ()):
                if index not in self.taken and self.source.is_ancestor(rdd_id, self.keys[index][0]):
                    extra = cost.recompute_ms
                    self._update(index, self.costs[index].adjusted(extra_recompute_ms=extra))

    def _update(self, index: int, updated: PartitionCost) -> None:
        self.costs[index] = updated
        self.updated.add(index)
        heapq.heappush(self.heap, (updated.cost, self.keys[index], index))


class BlazePolicy(Policy):
    """The published cost-based admission and eviction (see the module docstring)."""

    def __init__(self, name: str = "blaze", *, size_ratio_filter: bool = True, staged: bool = True):
        self.name = name
        self.size_ratio_filter = size_ratio_filter
        self.staged = staged  # order only the cheapest candidates first (same answer, faster)

    def admit(self, incoming, resident, budget_bytes, ctx=None) -> AdmissionDecision:
        _check_budget(budget_bytes)
        ctx = ctx or PolicyContext()
        source = ctx.require_costs(self.name)
        promoting = incoming.location == Location.DISK
        mine = source.cost(incoming.key, on_disk=promoting)
        if not mine.has_future:
            return AdmissionDecision(Location.NONE, (), "no future reference")
        if mine.cost <= 0:  # free to recompute and to store: not worth memory
            return AdmissionDecision(mine.fallback(), (), "costs nothing")
        memory, own = Location.MEMORY, incoming.key
        others = [s for s in resident if s.location is memory and s.key != own]
        used = sum([s.size_bytes for s in others])
        need = used + incoming.size_bytes - budget_bytes
        if need <= 0:
            return AdmissionDecision(Location.MEMORY, (), "fits")
        rejected = Location.DISK if promoting else mine.fallback()
        if incoming.size_bytes > budget_bytes:
            return AdmissionDecision(rejected, (), "larger than the budget")
        all_costs = _costs_of(source, [s.key for s in others])
        if promoting and not self._promotable(mine, all_costs, ctx):
            return AdmissionDecision(Location.DISK, (), "cost in the lowest in-memory share")
        # only partitions costing no more than the incoming one can ever be victims (costs
        # only grow by propagation), so the queue holds those alone
        limit = mine.cost
        count = len(others)
        values = np.array([c.cost for c in all_costs], dtype=float).reshape(count)
        sizes = np.array([s.size_bytes for s in others], dtype=float).reshape(count)
        eligible = values <= limit
        if self.size_ratio_filter:  # denser in cost per byte than the incoming one: keep it
            eligible &= (values <= 0) | (limit * sizes > incoming.size_bytes * values)
        chosen = np.flatnonzero(eligible)
        target = need + ctx.margin(budget_bytes)
        # Usually a handful of the cheapest partitions free the space: order only those
        # (every candidate up to a cost horizon), and redo with all if the horizon is crossed.
        horizon = _horizon(values[chosen], sizes[chosen], 4 * target) if self.staged else None
        first = chosen[values[chosen] <= horizon] if horizon is not None else chosen
        for subset, limit_cost in ((first, horizon), (chosen, None)):
            queue = _Candidates(
                [others[i].key for i in subset.tolist()],
                [all_costs[i] for i in subset.tolist()],
                sizes[subset].tolist(),
                source,
                values[subset],
            )
            outcome = self._select(queue, mine.cost, target, limit_cost)
            if outcome is not None:
                break
            # the subset ran past its horizon: its answer may differ from the full one
        victims, freed = outcome
        if freed < need:
            return AdmissionDecision(rejected, (), "victims would cost more than it saves")
        return AdmissionDecision(Location.MEMORY, tuple(victims), "evicted lower-cost partitions")

    @staticmethod
    def _select(queue: _Candidates, budget_cost: float, target: float, horizon: float | None):
        """Victims in ascending cost, each and in sum no costlier than ``budget_cost``, until
        ``target`` bytes are freed. None if the queue's next cost passes ``horizon`` (some
        partition outside the queue could then come first)."""
        victims: list[tuple[PartitionKey, Location]] = []
        freed = total = 0.0
        while freed < target:
            lowest = queue.peek_cost()
            if horizon is not None and (lowest is None or lowest > horizon):
                return None
            if lowest is None or lowest > budget_cost or total + lowest > budget_cost:
                break  # ascending order: nothing later qualifies either
            key, cost, size = queue.pop()
            destination = cost.fallback()
            victims.append((key, destination))
            freed += size
            total += cost.cost
            if destination == Location.NONE:
                queue.dropped(key, cost)
        return victims, freed

    def _promotable(self, mine: PartitionCost, costs: Sequence[PartitionCost], ctx) -> bool:
        if not costs:
            return True
        values = np.fromiter((c.cost for c in costs), dtype=float, count=len(costs))
        index = int((len(values) - 1) * ctx.promotion_ratio)
        return mine.cost >= float(np.partition(values, index)[index])

    def plan(self, states, budget_bytes, ctx=None) -> Plan:
        _check_budget(budget_bytes)
        ctx = ctx or PolicyContext()
        source = ctx.require_costs(self.name)
        target: dict[PartitionKey, Location] = {}
        live: dict[PartitionKey, PartitionCost] = {}
        sizes: dict[PartitionKey, float] = {}
        dead_in_memory: list[PartitionKey] = []
        in_memory: set[PartitionKey] = set()
        for state in sorted(states, key=lambda s: s.key):
            if state.location == Location.MEMORY:
                in_memory.add(state.key)
            # ranked by the cost at its current location, as the authors' analyzer does
            cost = source.cost(state.key, on_disk=state.location == Location.DISK)
            if cost.has_future:
                live[state.key] = cost
                sizes[state.key] = state.size_bytes
            else:
                target[state.key] = Location.NONE
                if state.location == Location.MEMORY:
                    dead_in_memory.append(state.key)
        queue = _Candidates(list(live), list(live.values()), [sizes[k] for k in live], source)
        total = sum(sizes.values())
        evicted: list[PartitionKey] = []
        while total > budget_bytes:
            popped = queue.pop()
            if popped is None:
                break
            key, cost, size = popped
            target[key] = cost.fallback()
            evicted.append(key)
            total -= size
            if target[key] == Location.NONE:
                queue.dropped(key, cost)
        kept: list[PartitionKey] = []
        while (popped := queue.pop()) is not None:
            kept.append(popped[0])
            target[popped[0]] = Location.MEMORY
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
