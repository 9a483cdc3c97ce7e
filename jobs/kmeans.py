"""KMeans (Lloyd's algorithm) over features from a parsing pipeline, as an RDD loop.

Text lines are parsed into records and expanded into features (:mod:`jobs.features`); every
iteration assigns each point to its nearest centre and collects the new centres. Initial
centres are the points with the ``k`` smallest ids, so the DuckDB reference starts from the
same place.

* ``expert``: the features cached (read every iteration), nothing else.
* ``common``: the parsed records cached as well (read once, to build the features), and each
  iteration's assignment cached because two actions read it (the centres and the cost) —
  and never unpersisted.
"""

from __future__ import annotations

import time

import numpy as np

from jobs.features import features, records
from jobs.result import JobResult

__all__ = ["DATASET", "NAME", "params", "run"]

NAME = "kmeans"
DATASET = "points"


def params(scale: float) -> dict:
    return {"k": 8, "iterations": 10}


def _nearest(centres: np.ndarray):
    def assign(point):
        _, x = point
        distances = ((centres - x) ** 2).sum(axis=1)
        best = int(np.argmin(distances))
        return best, (x, 1, float(distances[best]))

    return assign


def _merge(a, b):
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


def _new_centres(centres: np.ndarray, sums: dict) -> np.ndarray:
    centres = centres.copy()
    for cluster, (total, count, _) in sums.items():
        centres[cluster] = total / count
    return centres


def run(spark, data_path, cacher, p: dict, variant: str = "expert") -> JobResult:
    sc = spark.sparkContext
    k = p["k"]
    common = variant == "common"
    parsed = records(sc, data_path)
    if common:
        parsed = cacher.rdd(parsed, "records")
    points = cacher.rdd(features(parsed), "features")
    first = sorted(points.filter(lambda pt: pt[0] < k).collect(), key=lambda pt: pt[0])
    centres = np.array([x for _, x in first])
    seconds = []
    for _ in range(p["iterations"]):
        start = time.perf_counter()
        if common:
            assigned = cacher.rdd(points.map(_nearest(centres)), "assigned")
            sums = assigned.reduceByKey(_merge).collectAsMap()
            assigned.map(lambda a: a[1][2]).sum()  # the cost, as such loops print it
        else:
            sums = points.map(_nearest(centres)).reduceByKey(_merge).collectAsMap()
        centres = _new_centres(centres, sums)
        seconds.append(time.perf_counter() - start)
    cost = points.map(lambda pt: float(((centres - pt[1]) ** 2).sum(axis=1).min())).sum()
    return JobResult(
        NAME,
        p["iterations"],
        arrays={"centres": centres},
        summary={"cost": float(cost)},
        iteration_seconds=seconds,
    )
