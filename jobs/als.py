"""Alternating least squares on a synthetic ratings matrix, hand-written over RDDs.

Ratings are parsed from MovieLens-style text and persisted; the per-user and per-item
rating lists (``groupByKey``) are persisted too, since every half-iteration reads one of
them. A half-iteration broadcasts the other side's factors, solves one regularised
least-squares problem per user (or item) and collects the new factors (the action).
The new factors are read once (collected), so they are not persisted.
Initial factors depend only on ``(seed, id)``, so every run starts from the same point.
"""

from __future__ import annotations

import time

import numpy as np

from jobs.datagen import read_lines
from jobs.result import JobResult

__all__ = ["DATASET", "NAME", "initial_factors", "params", "run"]

NAME = "als"
DATASET = "ratings"


def params(scale: float) -> dict:
    return {"rank": 8, "iterations": 5, "reg": 0.1, "seed": 7}


def initial_factors(ids: np.ndarray, rank: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    table = rng.normal(scale=0.3, size=(int(ids.max()) + 1, rank))
    return table[ids]


def _parse(line: str) -> tuple[int, int, float]:
    user, item, rating, _ = line.split("::")
    return int(user), int(item), float(rating)


def _solver(factors_bc, rank: int, reg: float):
    def solve(pairs):
        others = factors_bc.value
        ids = np.fromiter((o for o, _ in pairs), dtype=np.int64)
        ratings = np.fromiter((r for _, r in pairs), dtype=np.float64)
        mat = others[ids]
        gram = mat.T @ mat + reg * len(ids) * np.eye(rank)
        return np.linalg.solve(gram, mat.T @ ratings)

    return solve


def _dense(pairs: dict[int, np.ndarray], size: int, rank: int) -> np.ndarray:
    table = np.zeros((size, rank))
    for key, vector in pairs.items():
        table[key] = vector
    return table


def run(spark, data_path, cacher, p: dict) -> JobResult:
    sc = spark.sparkContext
    rank, reg = p["rank"], p["reg"]
    ratings = cacher.rdd(read_lines(sc, data_path).map(_parse), "ratings")
    by_user = cacher.rdd(
        ratings.map(lambda r: (r[0], (r[1], r[2]))).groupByKey().mapValues(list), "by_user"
    )
    by_item = cacher.rdd(
        ratings.map(lambda r: (r[1], (r[0], r[2]))).groupByKey().mapValues(list), "by_item"
    )
    n_users = by_user.keys().max() + 1
    n_items = by_item.keys().max() + 1
    items = initial_factors(np.arange(n_items), rank, p["seed"] + 1)
    users = np.zeros((n_users, rank))
    seconds = []
    for _ in range(p["iterations"]):
        start = time.perf_counter()
        items_bc = sc.broadcast(items)
        user_rdd = by_user.mapValues(_solver(items_bc, rank, reg))
        users = _dense(user_rdd.collectAsMap(), n_users, rank)
        users_bc = sc.broadcast(users)
        item_rdd = by_item.mapValues(_solver(users_bc, rank, reg))
        items = _dense(item_rdd.collectAsMap(), n_items, rank)
        seconds.append(time.perf_counter() - start)
    final_bc = sc.broadcast((users, items))

    def squared_error(r):
        u, v = final_bc.value
        return (float(u[r[0]] @ v[r[1]]) - r[2]) ** 2

    rmse = float(np.sqrt(ratings.map(squared_error).mean()))
    return JobResult(
        NAME,
        p["iterations"],
        arrays={"user_factors": users, "item_factors": items},
        summary={"rmse": rmse},
        iteration_seconds=seconds,
    )
