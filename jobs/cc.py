"""Connected components by label propagation, iterated until no label changes.

The directed R-MAT graph is read as undirected. ``adjacency`` is persisted for the run; each
iteration sends every vertex's label to its neighbours, keeps the minimum, persists the new
labels, counts how many changed (the iteration's action) and unpersists the old labels.
Converges to "label = smallest vertex id of the component"; ``max_iterations`` caps
pathological inputs (the DuckDB reference uses the same cap, so results still agree).
"""

from __future__ import annotations

import time

import numpy as np

from jobs.datagen import read_lines
from jobs.result import JobResult

__all__ = ["DATASET", "NAME", "params", "run"]

NAME = "cc"
DATASET = "graph"


def params(scale: float) -> dict:
    return {"max_iterations": 30}


def _both_directions(line: str):
    src, dst = line.split()
    a, b = int(src), int(dst)
    return ((a, b), (b, a))


def _send_label(item):
    vertex, (neighbours, label) = item
    yield vertex, label
    for n in neighbours:
        yield n, label


def run(spark, data_path, cacher, p: dict) -> JobResult:
    sc = spark.sparkContext
    edges = read_lines(sc, data_path).flatMap(_both_directions).distinct()
    adjacency = cacher.rdd(edges.groupByKey().mapValues(sorted), "adjacency")
    labels = cacher.rdd(adjacency.map(lambda kv: (kv[0], kv[0])), "labels")
    labels.count()
    seconds = []
    iterations = 0
    for _ in range(p["max_iterations"]):
        start = time.perf_counter()
        new_labels = cacher.rdd(
            adjacency.join(labels).flatMap(_send_label).reduceByKey(min), "labels"
        )
        changed = new_labels.join(labels).filter(lambda kv: kv[1][0] != kv[1][1]).count()
        cacher.unpersist(labels)
        labels = new_labels
        iterations += 1
        seconds.append(time.perf_counter() - start)
        if changed == 0:
            break
    pairs = sorted(labels.collect())
    vertex = np.array([v for v, _ in pairs], dtype=np.int64)
    label = np.array([c for _, c in pairs], dtype=np.int64)
    return JobResult(
        NAME,
        iterations,
        arrays={"vertex": vertex, "label": label},
        summary={"components": float(len(np.unique(label)))},
        iteration_seconds=seconds,
    )
