"""Which persisted RDD partitions one task of a stage reads: the stage's RDD graph, walked.

Why: Spark has no per-task record of the cached blocks a task read, so the ledger infers it
from the stage's RDD infos (each RDD's class name, partition count and parents, in
dependency order) the way Spark's ``RDD.iterator`` runs: from the stage's final RDD down,
each RDD asking its parents for the partitions its own partition depends on, until a
persisted partition is found stored (a hit: Spark reads it and goes no further), or the
stage's boundary (a shuffle) is reached.

How a partition maps onto its parents is fixed by the RDD's class, which the stage info
names for any RDD the program did not rename:

- ``UnionRDD``: the parents' partitions one after the other (partition ``i`` is partition
  ``i - offset`` of the parent whose range holds it) — PySpark's ``join``/``cogroup`` of
  RDDs that are not co-partitioned;
- ``PartitionerAwareUnionRDD`` and ``ZippedPartitionsRDD*``: partition ``i`` of every parent
  (a co-partitioned ``join``, ``zip``);
- ``CartesianRDD``: ``(i // n2, i % n2)`` of its two parents;
- a shuffle (``ShuffledRDD``, ``ShuffledRowRDD``) reads the previous stage's output, never
  its parents' blocks; a ``CoalescedRDD``/``CoGroupedRDD`` groups partitions in ways the
  event does not record: the walk stops there (reads not counted rather than guessed);
- any other RDD with a parent of as many partitions: partition ``i`` of that parent
  (narrow one-to-one dependencies: ``map``, ``mapPartitions``, PySpark's ``PythonRDD``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from lineage.events import StageRun

__all__ = ["MAX_STEPS", "StageGraph", "parent_partitions"]

# bound on the nodes one task's walk visits: a lineage of diamonds (an RDD unioned with
# itself, again and again) doubles its paths per level; Spark reads each path, we count
# up to this many and stop
MAX_STEPS = 4096

_SHUFFLE_READS = frozenset({"ShuffledRDD", "ShuffledRowRDD"})
_UNKNOWN_GROUPING = frozenset({"CoalescedRDD", "CoGroupedRDD", "SubtractedRDD"})
_SAME_INDEX = frozenset(
    {"PartitionerAwareUnionRDD", "ZippedPartitionsRDD2", "ZippedPartitionsRDD3"}
    | {"ZippedPartitionsRDD4", "ZippedWithIndexRDD"}
)


@dataclass(frozen=True)
class _Node:
    kind: str  # the RDD's name in the stage info: its class unless the program named it
    num_partitions: int
    parent_ids: tuple[int, ...]
    persisted: bool


def parent_partitions(node: _Node, split: int, nodes: dict[int, _Node]) -> list[tuple[int, int]]:
    """``(parent_rdd, parent_split)`` that partition ``split`` of ``node`` reads, within the
    stage (parents outside ``nodes`` are behind a shuffle and are not read here)."""
    if node.kind in _SHUFFLE_READS or node.kind in _UNKNOWN_GROUPING:
        return []
    parents = [nodes.get(p) for p in node.parent_ids]
    if node.kind == "UnionRDD":
        if any(p is None for p in parents):
            return []
        offset = 0
        for parent_id, parent in zip(node.parent_ids, parents, strict=True):
            if split < offset + parent.num_partitions:
                return [(parent_id, split - offset)]
            offset += parent.num_partitions
        return []
    if node.kind in _SAME_INDEX:
        return [(p, split) for p, n in zip(node.parent_ids, parents, strict=True) if n]
    if node.kind == "CartesianRDD" and len(parents) == 2 and all(parents):
        second = parents[1].num_partitions
        if second <= 0:
            return []
        first_id, second_id = node.parent_ids
        return [(first_id, split // second), (second_id, split % second)]
    return [
        (p, split)
        for p, n in zip(node.parent_ids, parents, strict=True)
        if n is not None and n.num_partitions == node.num_partitions
    ]


@dataclass(frozen=True)
class StageGraph:
    """The RDDs of one stage, enough to walk a task's partition down to persisted blocks."""

    roots: tuple[int, ...]  # the stage's final RDD (or, unnamed, every RDD no other reads)
    nodes: dict[int, _Node]
    persisted: frozenset[int]

    @classmethod
    def of(cls, stage: StageRun) -> StageGraph:
        nodes = {
            n.rdd_id: _Node(n.name, n.num_partitions, tuple(n.parent_ids), n.storage_level.is_valid)
            for n in stage.rdds
        }
        persisted = frozenset(rdd for rdd, node in nodes.items() if node.persisted)
        if stage.final_rdd_id in nodes:
            roots: tuple[int, ...] = (stage.final_rdd_id,)
        else:
            read = {p for node in nodes.values() for p in node.parent_ids}
            roots = tuple(sorted((r for r in nodes if r not in read), reverse=True))
        return cls(roots, nodes, persisted)

    def walk(
        self, split: int, look: Callable[[tuple[int, int]], str]
    ) -> Iterator[tuple[tuple[int, int], str]]:
        """Yield ``((rdd, split), look(...))`` for every persisted partition the task with
        partition ``split`` of the final RDD reaches, depth first in dependency order; a
        partition ``look`` calls a hit (anything but ``"miss"``) is read, not descended."""
        stack = [(root, split) for root in reversed(self.roots)]
        steps = 0
        while stack and steps < MAX_STEPS:
            steps += 1
            rdd_id, part = stack.pop()
            node = self.nodes[rdd_id]
            if node.persisted:
                outcome = look((rdd_id, part))
                yield (rdd_id, part), outcome
                if outcome != "miss":
                    continue
            # reversed: the first dependency is popped (computed) first, as Spark does
            below = parent_partitions(node, part, self.nodes)
            stack.extend(reversed([(p, s) for p, s in below if p in self.nodes]))
