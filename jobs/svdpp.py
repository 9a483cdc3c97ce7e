"""SVD++ (Koren 2008) on a ratings graph, trained the GraphX way with per-iteration factor state.

A rating r(u, i) is predicted as ``mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 * sum_{j in N(u)}
y_j)``. Users are vertex state in an RDD co-partitioned with the ratings grouped by user; the
items' factors (few) travel as a broadcast. Each iteration takes one gradient step for every
user (a narrow co-partitioned ``by_user.join(users)``, so the user state's lineage grows
across iterations), then one for every item from the new users' residuals (the shuffle).
Initial factors depend only on ``(seed, id)``, so every run starts from the same point.

* ``expert``: the grouped ratings cached; each iteration's user state cached, materialised,
  and the previous one unpersisted.
* ``common``: the parsed ratings cached too (read for the mean and the grouping), and old
  user states never unpersisted.
"""

from __future__ import annotations

import time
from operator import add

import numpy as np

from jobs.datagen import read_lines
from jobs.graph import PARTITIONS
from jobs.result import JobResult

__all__ = ["DATASET", "NAME", "initial", "params", "run"]

NAME = "svdpp"
DATASET = "ratings"


def params(scale: float) -> dict:
    return {"rank": 8, "iterations": 8, "step": 0.05, "reg": 0.02, "seed": 7}


def initial(ids: np.ndarray, rank: int, seed: int) -> np.ndarray:
    """Small random factors of ``ids``, row by row a pure function of ``(seed, id)``."""
    return np.array(
        [np.random.default_rng([seed, int(i)]).normal(scale=0.1, size=rank) for i in ids]
    ).reshape(len(ids), rank)


def _add_pairs(a, b):
    return a[0] + b[0], a[1] + b[1]


def _parse(line: str) -> tuple[int, int, float]:
    user, item, rating, _ = line.split("::")
    return int(user), int(item), float(rating)


def _group(items):
    grouped: dict[int, list] = {}
    for user, pair in items:
        grouped.setdefault(user, []).append(pair)
    for user, pairs in grouped.items():
        pairs.sort()
        yield (
            user,
            (
                np.array([i for i, _ in pairs], dtype=np.int64),
                np.array([r for _, r in pairs], dtype=np.float64),
            ),
        )


def _residuals(items_bc, mu: float, rated, state):
    q, y, bi = items_bc.value
    ids, ratings = rated
    p, b = state
    scale = len(ids) ** -0.5
    implicit = scale * y[ids].sum(axis=0)
    factors = q[ids]
    err = ratings - (mu + b + bi[ids] + factors @ (p + implicit))
    return ids, factors, implicit, scale, err


def _user_step(items_bc, mu: float, step: float, reg: float):
    def update(pair):
        rated, (p, b) = pair
        _, factors, _, _, err = _residuals(items_bc, mu, rated, (p, b))
        n = len(err)
        return p - step * (-(err @ factors) / n + reg * p), b - step * (-err.mean() + reg * b)

    return update


def _item_gradients(items_bc, mu: float):
    def gradients(item):
        _, (rated, (p, b)) = item
        ids, factors, implicit, scale, err = _residuals(items_bc, mu, rated, (p, b))
        dy = -scale * (err @ factors)
        for i, e in zip(ids.tolist(), err.tolist()):
            yield i, np.concatenate((-e * (p + implicit), (-e, 1.0), dy, (1.0,)))

    return gradients


def _squared_errors(items_bc, mu: float):
    def squared(pair):
        rated, state = pair
        err = _residuals(items_bc, mu, rated, state)[-1]
        return float(err @ err)

    return squared


def run(spark, data_path, cacher, p: dict, variant: str = "expert") -> JobResult:
    sc = spark.sparkContext
    rank, step, reg, seed = p["rank"], p["step"], p["reg"], p["seed"]
    common = variant == "common"
    ratings = read_lines(sc, data_path).map(_parse)
    if common:
        ratings = cacher.rdd(ratings, "ratings")
    keyed = ratings.map(lambda r: (r[0], (r[1], r[2]))).partitionBy(PARTITIONS)
    by_user = cacher.rdd(keyed.mapPartitions(_group, preservesPartitioning=True), "by_user")
    if common:  # the cached parsed ratings, read again for the mean and the item count
        total, count = ratings.map(lambda r: (r[2], 1)).reduce(_add_pairs)
        n_items = ratings.map(lambda r: r[1]).max() + 1
    else:
        total, count = by_user.map(lambda kv: (kv[1][1].sum(), len(kv[1][1]))).reduce(_add_pairs)
        n_items = by_user.map(lambda kv: int(kv[1][0].max())).max() + 1
    mu = total / count
    item_ids = np.arange(n_items)
    q = initial(item_ids, rank, seed + 1)
    y = initial(item_ids, rank, seed + 2)
    bi = np.zeros(n_items)
    users = cacher.rdd(
        by_user.map(
            lambda kv: (kv[0], (initial(np.array([kv[0]]), rank, seed)[0], 0.0)),
            preservesPartitioning=True,
        ),
        "users",
    )
    users.count()
    seconds = []
    for _ in range(p["iterations"]):
        start = time.perf_counter()
        items_bc = sc.broadcast((q, y, bi))
        new_users = cacher.rdd(
            by_user.join(users, PARTITIONS).mapValues(_user_step(items_bc, mu, step, reg)),
            "users",
        )
        if not common:
            new_users.count()
            cacher.unpersist(users)
        users = new_users
        grads = (
            by_user.join(users, PARTITIONS)
            .flatMap(_item_gradients(items_bc, mu))
            .reduceByKey(add, PARTITIONS)
            .collectAsMap()
        )
        q, y, bi = q.copy(), y.copy(), bi.copy()
        for i, g in grads.items():
            dq, db, nq, dy, ny = g[:rank], g[rank], g[rank + 1], g[rank + 2 : -1], g[-1]
            q[i] -= step * (dq / nq + reg * q[i])
            bi[i] -= step * (db / nq + reg * bi[i])
            y[i] -= step * (dy / ny + reg * y[i])
        seconds.append(time.perf_counter() - start)
    final_bc = sc.broadcast((q, y, bi))
    sse = by_user.join(users, PARTITIONS).values().map(_squared_errors(final_bc, mu)).sum()
    state = sorted(users.collect())
    user_ids = np.array([u for u, _ in state], dtype=np.int64)
    return JobResult(
        NAME,
        p["iterations"],
        arrays={
            "user_ids": user_ids,
            "user_factors": np.array([s[0] for _, s in state]),
            "user_bias": np.array([s[1] for _, s in state], dtype=np.float64),
            "item_factors": q,
            "item_implicit": y,
            "item_bias": bi,
        },
        summary={"rmse": float(np.sqrt(sse / count)), "mu": float(mu)},
        iteration_seconds=seconds,
    )
