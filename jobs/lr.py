"""Logistic regression by full-batch gradient descent over parsed, expanded features.

Records are parsed from CSV text and expanded (raw features, their squares, a bias term —
the feature extraction a real pipeline does) and the result persisted. Each iteration scores
every point once, persists the scored RDD because two actions read it (the loss and the
gradient), and — as is common in hand-written loops — never unpersists it: dead
per-iteration caches then compete with the live feature cache for storage memory.
"""

from __future__ import annotations

import time

import numpy as np

from jobs.datagen import read_lines
from jobs.result import JobResult

__all__ = ["DATASET", "NAME", "expand", "params", "run"]

NAME = "lr"
DATASET = "labeled"


def params(scale: float) -> dict:
    return {"iterations": 10, "step": 0.01}


def expand(x: np.ndarray) -> np.ndarray:
    """Feature vector: bias, raw features, squared features."""
    return np.concatenate(([1.0], x, x * x))


def _parse(line: str) -> tuple[float, np.ndarray]:
    fields = line.split(",")
    x = np.array([float(v) for v in fields[1:]], dtype=np.float64)
    return float(fields[0]), expand(x)


def _scorer(w: np.ndarray):
    def score(point):
        y, x = point
        return y, x, float(x @ w)

    return score


def _log_loss(item) -> float:
    y, _, margin = item
    # log(1 + exp(-s*m)) with s = +-1, computed stably
    signed = margin if y > 0.5 else -margin
    return float(np.logaddexp(0.0, -signed))


def _gradient(item) -> np.ndarray:
    y, x, margin = item
    return (1.0 / (1.0 + np.exp(-margin)) - y) * x


def run(spark, data_path, cacher, p: dict) -> JobResult:
    sc = spark.sparkContext
    points = cacher.rdd(read_lines(sc, data_path).map(_parse), "features")
    n = points.count()
    dims = len(points.first()[1])
    w = np.zeros(dims)
    seconds = []
    loss = float("nan")
    for _ in range(p["iterations"]):
        start = time.perf_counter()
        scored = cacher.rdd(points.map(_scorer(w)), "scored")
        loss = scored.map(_log_loss).sum() / n
        grad = scored.map(_gradient).treeAggregate(
            np.zeros(dims), lambda acc, g: acc + g, lambda a, b: a + b
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
        summary={"loss": float(final_loss), "accuracy": float(accuracy), "last_loss": loss},
        iteration_seconds=seconds,
    )
