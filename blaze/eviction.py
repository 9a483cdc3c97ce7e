"""Per-executor eviction indexes kept in step with the ledger and the engine's cost model.

Why: a decision under memory pressure must not list and rank every cached partition (that
grew linearly with the partitions cached). Each executor keeps a
:class:`costmodel.eviction_index.EvictionIndex` in the policy's eviction order; before a
decision it takes in only what changed since the last one — the ledger's touched blocks
(stored, resized, read, removed) and the model's forgotten costs — and the policy reads
victims lazily from it.
"""

from __future__ import annotations

from collections.abc import Callable

from blaze.ledger import Ledger
from blaze.policies import ManagerPolicy
from costmodel.cost import CostModel
from costmodel.eviction_index import EvictionIndex
from costmodel.policies import AdmissionDecision, PartitionState, PolicyContext
from costmodel.policies import get_policy as get_rule

__all__ = ["ResidentIndexes"]


class ResidentIndexes:
    """One eviction index per executor for the manager's policy."""

    def __init__(self, ledger: Ledger, model: CostModel, policy: ManagerPolicy) -> None:
        self._ledger, self._model = ledger, model
        self._rule = get_rule(policy.rule_name)
        self._ctx = PolicyContext(costs=model)
        self._rank = self._rule.ranking(self._ctx)
        self._indexes: dict[str, EvictionIndex] = {}
        ledger.book.touched = set(ledger.book.blocks)
        model.changed = set()

    def _epoch(self):
        model = self._model
        return (model.epoch, model.current_stage, model.last_stage)

    def _index(self, executor: str) -> EvictionIndex:
        index = self._indexes.get(executor)
        if index is None:
            index = self._indexes[executor] = EvictionIndex(self._rank, self._epoch)
        return index

    def sync(self) -> None:
        """Take in the blocks and costs that changed since the last decision."""
        ledger, touched = self._ledger, self._ledger.book.touched
        if touched:
            blocks = ledger.book.blocks
            for slot in touched:
                record = blocks.get(slot)
                index = self._index(slot[2])
                if record is None or not record.memory_size:
                    index.discard((slot[0], slot[1]))
                else:
                    index.put((slot[0], slot[1]), record.memory_size, record.last_access)
            touched.clear()
        changed = self._model.changed
        if changed:
            for index in self._indexes.values():
                index.invalidate(changed)
            changed.clear()

    def decide(
        self,
        incoming: PartitionState,
        executor: str,
        used_bytes: float,
        budget_bytes: float,
        candidate: Callable[[tuple[int, int]], bool],
    ) -> AdmissionDecision:
        """The policy's admission, its victims read from the executor's index."""
        self.sync()
        return self._rule.choose(
            incoming, self._index(executor), used_bytes, budget_bytes, self._ctx, candidate
        )
