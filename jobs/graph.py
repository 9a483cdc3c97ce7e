"""The graph loading every vertex program shares: parsed edges, co-partitioned adjacency.

GraphX-style: the graph is hash-partitioned once (``partitionBy``); vertex state derived from
it with ``mapValues`` keeps that partitioner, so joining state with the graph, or new state
with old state, is narrow in PySpark (no shuffle) and each iteration's state hangs off the
previous one's lineage — which is what makes a lost state partition expensive to recompute.
"""

from __future__ import annotations

from jobs.datagen import read_lines

__all__ = ["PARTITIONS", "adjacency", "parse_edge"]

PARTITIONS = 8


def parse_edge(line: str) -> tuple[int, int]:
    src, dst = line.split()
    return int(src), int(dst)


def _with_endpoints(edge: tuple[int, int], undirected: bool):
    src, dst = edge
    yield src, dst
    yield dst, (src if undirected else None)


def _neighbours(values) -> list[int]:
    return sorted({v for v in values if v is not None})


def edges(sc, data_path):
    """Distinct parsed edges (self-loops dropped)."""
    parsed = read_lines(sc, data_path).map(parse_edge).filter(lambda e: e[0] != e[1])
    return parsed.distinct(PARTITIONS)


def adjacency(edge_rdd, *, undirected: bool):
    """Every vertex (source or target) with its sorted out-neighbours, hash-partitioned."""
    pairs = edge_rdd.flatMap(lambda e: _with_endpoints(e, undirected))
    return pairs.partitionBy(PARTITIONS).mapPartitions(_group, preservesPartitioning=True)


def _group(items):
    grouped: dict[int, list] = {}
    for key, value in items:
        grouped.setdefault(key, []).append(value)
    for key, values in grouped.items():
        yield key, _neighbours(values)
