"""PageRank on a power-law directed graph, as the Spark example and GraphX loops write it.

``links`` (parsed, de-duplicated adjacency lists) is persisted for the whole run; each
iteration's ``ranks`` is persisted, materialised by an action, and the previous iteration's
ranks unpersisted (GraphX style). Semantics are those of Spark's ``examples/pagerank.py``:
ranks start at 1.0 for vertices with out-links, rank = 0.15 + 0.85 * sum of contributions,
and a vertex that receives no contribution drops out. Both caches sit right after a shuffle,
so on one machine their recomputation mostly re-reads shuffle files: this is the
suite's expected "policy makes little difference" case, kept because real programs look so.
"""

from __future__ import annotations

import time
from operator import add

import numpy as np

from jobs.datagen import read_lines
from jobs.result import JobResult

__all__ = ["DATASET", "NAME", "params", "run"]

NAME = "pagerank"
DATASET = "graph"


def params(scale: float) -> dict:
    return {"iterations": 8, "damping": 0.85}


def _parse_edge(line: str) -> tuple[int, int]:
    src, dst = line.split()
    return int(src), int(dst)


def _contributions(item):
    _, (neighbours, rank) = item
    share = rank / len(neighbours)
    for dst in neighbours:
        yield dst, share


def run(spark, data_path, cacher, p: dict) -> JobResult:
    sc = spark.sparkContext
    damping = p["damping"]
    edges = read_lines(sc, data_path).map(_parse_edge)
    links = cacher.rdd(edges.distinct().groupByKey().mapValues(sorted), "links")
    ranks = cacher.rdd(links.mapValues(lambda _: 1.0), "ranks")
    ranks.count()
    seconds = []
    for _ in range(p["iterations"]):
        start = time.perf_counter()
        contribs = links.join(ranks).flatMap(_contributions)
        new_ranks = cacher.rdd(
            contribs.reduceByKey(add).mapValues(lambda s: (1 - damping) + damping * s), "ranks"
        )
        new_ranks.count()
        cacher.unpersist(ranks)
        ranks = new_ranks
        seconds.append(time.perf_counter() - start)
    pairs = sorted(ranks.collect())
    ids = np.array([v for v, _ in pairs], dtype=np.int64)
    values = np.array([r for _, r in pairs], dtype=np.float64)
    return JobResult(
        NAME,
        p["iterations"],
        arrays={"vertex": ids, "rank": values},
        summary={"rank_sum": float(values.sum())},
        iteration_seconds=seconds,
    )
