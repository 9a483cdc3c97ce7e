"""Logistic regression by full-batch gradient descent over features from a parsing pipeline.

Text lines are parsed into (label, values) records and expanded into features
(:mod:`jobs.features`, plus a bias term); each iteration computes the loss and the gradient
of the current weights over every point.

* ``expert``: the features cached; loss and gradient computed in one pass per iteration.
* ``common``: the parsed records cached as well (read once), and each iteration scores every
  point into an RDD cached because two actions read it (the loss, then the gradient) and never
  unpersisted: dead per-iteration caches compete with the live features for memory.
"""

from __future__ import annotations

import time

import numpy as np

from jobs.features import features, records
from jobs.result import JobResult

__all__ = ["DATASET", "NAME", "params", "run"]

NAME = "lr"
DATASET = "labeled"


def params(scale: float) -> dict:
    return {"iterations": 10, "step": 0.01}


def _with_bias(point):
    y, x = point
    return y, np.concatenate(([1.0], x))


def _scorer(w: np.ndarray):
    def score(point):
        y, x = point
        return y, x, float(x @ w)

    return score


def _log_loss(item) -> float:
    y, _, margin = item
    signed = margin if y > 0.5 else -margin
    return float(np.logaddexp(0.0, -signed))


def _gradient(item) -> np.ndarray:
    y, x, margin = item
    return (1.0 / (1.0 + np.exp(-margin)) - y) * x


def _loss_and_gradient(item):
    return _log_loss(item), _gradient(item)


def run(spark, data_path, cacher, p: dict, variant: str = "expert") -> JobResult:
    sc = spark.sparkContext
    common = variant == "common"
    parsed = records(sc, data_path)
    if common:
        parsed = cacher.rdd(parsed, "records")
    points = cacher.rdd(features(parsed).map(_with_bias), "features")
    n = points.count()
    dims = len(points.first()[1])
    w = np.zeros(dims)
    seconds = []
    for _ in range(p["iterations"]):
        start = time.perf_counter()
        if common:
            scored = cacher.rdd(points.map(_scorer(w)), "scored")
            scored.map(_log_loss).sum()  # the loss, as such loops print it
            grad = scored.map(_gradient).treeAggregate(
                np.zeros(dims), lambda acc, g: acc + g, lambda a, b: a + b
            )
        else:
            _, grad = (
                points.map(_scorer(w))
                .map(_loss_and_gradient)
                .treeAggregate(
                    (0.0, np.zeros(dims)),
                    lambda acc, lg: (acc[0] + lg[0], acc[1] + lg[1]),
                    lambda a, b: (a[0] + b[0], a[1] + b[1]),
                )
            )
        w = w - p["step"] * grad / n
        seconds.append(time.perf_counter() - start)
    final = points.map(_scorer(w))
    final_loss = final.map(_log_loss).sum() / n
    accuracy = final.map(lambda t: float((t[2] > 0) == (t[0] > 0.5))).sum() / n
    return JobResult(
        NAME,
        p["iterations"],
        arrays={"weights": w},
        summary={"loss": float(final_loss), "accuracy": float(accuracy)},
        iteration_seconds=seconds,
    )
