"""Walks over a lineage graph: the one traversal every module uses.

Why one module: the lineage is walked for many questions — which stages will read a
partition (down through children, stopping at stored or shuffled ones), what recomputing it
costs (up through parents, stopping at stored ancestors), whether one RDD is an ancestor of
another, which cached DataFrames a stage reads, what a job's JVM lineage holds — and each
question differs only in *which neighbours a node leads to*. Written by hand each time, the
walks drifted (a visited set forgotten here, a start node counted there). Here a walk is
given its neighbour function, visits every node once, and the question lives in that
function alone.

Graphs are given as functions, not objects: ``parents(node)`` / ``children(node)`` of a
:class:`lineage.dag.LineageDag`, of the cost model's RDD specs, of a dict, or of JVM RDD
handles (with ``key`` naming them), so no caller copies its graph into another shape.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import TypeVar

__all__ = ["ancestors", "breadth_first", "descendants", "is_ancestor", "reachable", "walk"]

N = TypeVar("N")
Neighbours = Callable[[N], Iterable[N]]


def walk(
    starts: Iterable[N],
    expand: Neighbours,
    *,
    key: Callable[[N], Hashable] | None = None,
    limit: int | None = None,
) -> Iterator[N]:
    """Every node reachable from ``starts`` (the starts included), each yielded once.

    ``expand(node)`` is called once per yielded node, after it is yielded, and returns the
    nodes to go on to: a caller stops the walk at a node by returning nothing for it (a
    stored RDD, a shuffle boundary). ``key`` identifies nodes that are not hashable values
    themselves (JVM handles: their RDD id); ``limit`` stops after that many nodes.
    Depth first; the order among siblings is not part of the contract.
    """
    ident = key or (lambda node: node)
    seen: set[Hashable] = set()
    stack = list(starts)
    stack.reverse()  # the first start is visited first
    count = 0
    while stack:
        node = stack.pop()
        name = ident(node)
        if name in seen:
            continue
        seen.add(name)
        if limit is not None and count >= limit:
            return
        count += 1
        yield node
        stack.extend(expand(node))


def reachable(starts: Iterable[N], neighbours: Neighbours) -> set[N]:
    """The nodes ``walk`` visits, as a set (the starts included)."""
    return set(walk(starts, neighbours))


def ancestors(node: N, parents: Neighbours) -> frozenset[N]:
    """Every ancestor of ``node`` (not the node itself)."""
    return frozenset(walk(parents(node), parents))


def descendants(node: N, children: Neighbours) -> frozenset[N]:
    """Every descendant of ``node`` (not the node itself)."""
    return frozenset(walk(children(node), children))


def is_ancestor(ancestor: N, descendant: N, parents: Neighbours) -> bool:
    """Whether ``ancestor`` lies on some path up from ``descendant`` (a node is not its own)."""
    return any(node == ancestor for node in walk(parents(descendant), parents))


def breadth_first(
    starts: Iterable[N],
    neighbours: Neighbours,
    *,
    order: Callable[[N], object] | None = None,
) -> Iterator[tuple[N, int]]:
    """``(node, depth)`` level by level from ``starts`` (depth 0), each node once.

    For questions where the nearest answer wins (the previous iteration's RDD before older
    ones, the nearest ancestor that carries a Python call site). ``order`` sorts each level
    (ascending by its key) so ties between equally near nodes break the same way every time.
    """
    seen: set = set()
    level = list(starts)
    depth = 0
    while level:
        if order is not None:
            level = sorted(level, key=order)
        following: list[N] = []
        for node in level:
            if node in seen:
                continue
            seen.add(node)
            yield node, depth
            following.extend(neighbours(node))
        level = following
        depth += 1
