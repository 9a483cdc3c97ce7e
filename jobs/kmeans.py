"""KMeans (Lloyd's algorithm) on a Gaussian mixture, as an MLlib-style RDD loop.

Points are parsed from CSV text (the costly part of such programs), then persisted: each iteration assigns every point to its nearest centre and
collects the new centres (the action). Recomputing a dropped partition re-reads and
re-parses its file — costly, and exactly what caching is for. Initial centres are the
first ``k`` points by id, so the DuckDB reference starts from the same place.
"""

from __future__ import annotations

import time

import numpy as np

from jobs.datagen import read_lines
from jobs.result import JobResult

__all__ = ["DATASET", "NAME", "params", "parse_point", "run"]

NAME = "kmeans"
DATASET = "points"


def params(scale: float) -> dict:
    return {"k": 8, "iterations": 10}


def parse_point(line: str) -> tuple[int, np.ndarray]:
    fields = line.split(",")
    return int(fields[0]), np.array([float(v) for v in fields[1:]], dtype=np.float64)


def _nearest(centres: np.ndarray):
    def assign(point):
        _, x = point
        distances = ((centres - x) ** 2).sum(axis=1)
        return int(np.argmin(distances)), (x, 1)

    return assign


def _merge(a, b):
    return a[0] + b[0], a[1] + b[1]


def run(spark, data_path, cacher, p: dict) -> JobResult:
    sc = spark.sparkContext
    k = p["k"]
    points = cacher.rdd(read_lines(sc, data_path).map(parse_point), "points")
    first = sorted(points.filter(lambda pt: pt[0] < k).collect(), key=lambda pt: pt[0])
    centres = np.array([x for _, x in first])
    seconds = []
    for _ in range(p["iterations"]):
        start = time.perf_counter()
        sums = points.map(_nearest(centres)).reduceByKey(_merge).collectAsMap()
        centres = centres.copy()
        for cluster, (total, count) in sums.items():
            centres[cluster] = total / count
        seconds.append(time.perf_counter() - start)
    cost = points.map(lambda pt: float(((centres - pt[1]) ** 2).sum(axis=1).min())).sum()
    return JobResult(
        NAME,
        p["iterations"],
        arrays={"centres": centres},
        summary={"cost": float(cost)},
        iteration_seconds=seconds,
    )
