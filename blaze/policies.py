"""The policies of ``spark.blaze.policy`` behind one interface the manager calls.

Why a manager-side layer over ``costmodel.policies``: the cost model decides *which* partition
goes where (``get_policy(name).choose``) from the live engine's costs (the engine's
:class:`costmodel.cost.CostModel` is the ``CostSource``); the manager also needs to know, per
policy, whether it places blocks at all (``spark`` only observes, ``none`` caches nothing,
``mem_disk_au`` leaves placement to Spark's LRU), which JVM storage level to persist managed
data at (a level with disk when victims may spill, so Spark's ``dropFromMemory`` can move a
block to disk), whether autoCache/autoUnpersist may act (the published baselines act on the
program's own cache calls only), and when a partition that fits may be admitted from its own
cost alone (the cheap path of every block event). Every answer is read from the policy's row
of :data:`costmodel.policy_table.POLICY_TABLE`.
:class:`Candidate` states a partition's inputs by hand (tests and tools without an engine).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from blaze.config import POLICIES
from costmodel.policies import (
    AdmissionDecision,
    CostSource,
    PartitionState,
    PolicyContext,
    TableCosts,
    get_policy,
)
from costmodel.policy_table import PolicyInfo, policy_info
from costmodel.types import Location, PartitionCost

__all__ = ["Candidate", "ManagerPolicy", "get_manager_policy"]

Key = tuple[int, int]


@dataclass(frozen=True)
class Candidate:
    """One cached partition on one executor, with everything a policy may look at."""

    key: Key
    size: int
    last_access: int = 0
    future_refs: float = 1.0
    recompute_ms: float = 0.0
    write_ms: float = 0.0
    read_ms: float = 0.0
    on_disk: bool = False  # lives on disk now (a promotion asks to come back to memory)
    stages_to_next_use: int | None = None  # MRD's distance in stages (None: unknown)

    @property
    def next_reference(self) -> int | None:
        """MRD's next reference: None when no future reference is predicted; an unknown
        distance counts as the nearest (such a partition is kept longest)."""
        if self.future_refs <= 0:
            return None
        return 0 if self.stages_to_next_use is None else self.stages_to_next_use

    @property
    def cost(self) -> PartitionCost:
        return PartitionCost(
            future_refs=self.future_refs,
            recompute_ms=self.recompute_ms,
            write_ms=self.write_ms,
            read_ms=self.read_ms,
            on_disk=self.on_disk,
            size_bytes=float(self.size),
        )

    def state(self, location: Location) -> PartitionState:
        return PartitionState(
            key=self.key,
            size_bytes=float(self.size),
            location=location,
            last_access=float(self.last_access),
        )


@dataclass(frozen=True)
class ManagerPolicy:
    """A named policy, as the manager runs it: one row of
    :data:`costmodel.policy_table.POLICY_TABLE`, read for what the manager does."""

    info: PolicyInfo

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def acts(self) -> bool:
        """The manager places each block (memory, disk or nothing) on block events."""
        return self.info.places

    @property
    def manages(self) -> bool:
        """The manager owns what is persisted: it persists at its own level, follows the
        jobs that read it and may unpersist it (False: ``spark`` observes, ``none`` ignores)."""
        return self.info.owns_datasets and self.info.caches

    @property
    def caches(self) -> bool:
        return self.info.caches

    @property
    def spills(self) -> bool:
        return self.info.spills

    @property
    def auto_cache(self) -> bool:
        return self.info.auto_cache

    @property
    def auto_unpersist(self) -> bool:
        return self.info.auto_unpersist

    @property
    def ignores_cache_calls(self) -> bool:
        return self.info.ignores_cache_calls

    @property
    def rule_name(self) -> str:
        return self.info.rule or ""

    def admits_when_fits(self, costs: CostSource, key: Key, promoting: bool) -> bool:
        """Whether a partition that fits in the budget is admitted without looking further:
        always for the baselines; for Blaze only if it will be read again at a positive cost
        (otherwise it belongs on disk or nowhere even with room to spare)."""
        if self.rule_name != "blaze":
            return True
        cost = costs.cost(key, on_disk=promoting)
        return cost.has_future and cost.cost > 0

    def waits_for_compute_time(self, costs: CostSource, key: Key) -> bool:
        """Whether the decision on a partition stored before its task measured R waits for
        that task's end: not Blaze's when no future read is predicted — it drops such a
        partition whatever R is, and while it waited the same task's next put made Spark's
        LRU write it to disk (a copy nothing reads). The baselines do not weigh R."""
        if self.rule_name != "blaze":
            return True
        return costs.cost(key).has_future

    def fits_decision(self) -> AdmissionDecision:
        return AdmissionDecision(Location.MEMORY, (), "fits")

    def decide(
        self,
        incoming: PartitionState,
        resident: Sequence[PartitionState],
        budget_bytes: int,
        costs: CostSource,
    ) -> AdmissionDecision:
        """The cost model's admission of ``incoming`` against ``resident`` (same executor)."""
        return get_policy(self.rule_name).admit(
            incoming, resident, budget_bytes, PolicyContext(costs=costs)
        )

    def jvm_level_name(self) -> str:
        """The Spark storage level managed datasets are persisted at."""
        return "MEMORY_AND_DISK" if self.spills else "MEMORY_ONLY"

    def admit(
        self,
        incoming: Candidate,
        resident: Sequence[Candidate],
        budget_bytes: int,
        parents: Mapping[int, Sequence[int]] | None = None,
    ) -> AdmissionDecision:
        """Ask the cost model where ``incoming`` goes given its executor's in-memory partitions."""
        core = get_policy(self.rule_name)
        everyone = [incoming, *resident]
        costs = TableCosts(
            {c.key: c.cost for c in everyone},
            reference_counts={c.key: math.ceil(c.future_refs) for c in everyone},
            next_references={c.key: c.next_reference for c in everyone},
            parents=parents,
        )
        ctx = PolicyContext(costs=costs)
        incoming_state = incoming.state(Location.DISK if incoming.on_disk else Location.MEMORY)
        return core.admit(
            incoming_state, [c.state(Location.MEMORY) for c in resident], budget_bytes, ctx
        )


def get_manager_policy(name: str) -> ManagerPolicy:
    """The policy called ``name`` (one of :data:`blaze.config.POLICIES`)."""
    return ManagerPolicy(policy_info(name, POLICIES))
