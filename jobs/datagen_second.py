"""The second generator: every dataset kind in a second shape, fixed before any timed run.

Why a second shape: a policy (or a size predictor) tuned on one generator can look good for
reasons of that generator alone (DESIGN §7, the hidden-data lesson). Each shape below differs
from the first generator's in its family, its skew and its dimensions, while keeping the same
text format (so the jobs and the DuckDB references read it unchanged) and about the same
bytes at the same scale (so ``--scale`` means the same amount of work):

* ``graph`` — Chung–Lu instead of R-MAT: out- and in-degrees follow power laws of different
  exponents (2.3 and 2.6; R-MAT's hubs send and receive), on independent vertex orders, so
  the vertices that send most are not the ones that receive most; 10 edges per vertex
  instead of 6; vertex ids spread over [0, 2^40) instead of a dense range.
* ``points`` — 20 clusters in 16 dimensions instead of 8 in 10: unbalanced sizes (Dirichlet
  weights), anisotropic shapes (a random linear map per cluster), heavy-tailed noise
  (Student t, 4 degrees of freedom), 1 % uniform outliers and 3 mostly-zero columns.
* ``labeled`` — 16 correlated features instead of 10 independent ones, 4 of them sparse
  counts; a quadratic class boundary (the jobs' squared features can fit it), 20 % positives
  instead of ~50 %, 2 % labels flipped.
* ``ratings`` — more items than users (8,000 vs 3,000 at scale 1 instead of 2,000 vs 6,000),
  Zipf-skewed user activity as well as item popularity (exponents 0.8 and 1.0; the first
  generator draws users uniformly, items with 0.8), user and item biases, whole stars skewed
  towards 4–5, a rank-4 structure instead of rank 8; as many distinct ratings as the first.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from jobs.datagen import DatasetSpec

__all__ = ["GENERATORS", "sizes"]

EDGES_PER_VERTEX = 10
OUT_DEGREE_EXPONENT = 2.3
IN_DEGREE_EXPONENT = 2.6
ID_SPACE_BITS = 40
USER_ACTIVITY_EXPONENT = 0.8
ITEM_POPULARITY_EXPONENT = 1.0
# distinct ratings per rating drawn by the first generator (its draws repeat ~1 in 6)
RATINGS_KEPT = 5 / 6


def sizes(kind: str, records_first: int, scale: float) -> dict:
    """The second shape's sizes, given the first generator's record count at ``scale``.

    Points and labeled rows are 16 values wide instead of 10: 10/16 as many rows keep the
    bytes (and the work per pass) of the first generator's dataset at the same scale.
    """
    if kind == "graph":
        return {"records": records_first, "vertices": max(64, records_first // EDGES_PER_VERTEX)}
    if kind == "points":
        return {"records": max(200, records_first * 10 // 16), "dims": 16, "clusters": 20}
    if kind == "labeled":
        return {"records": max(200, records_first * 10 // 16), "dims": 16}
    root = math.sqrt(scale)
    return {
        "records": max(200, int(records_first * RATINGS_KEPT)),
        "dims": 4,
        "users": max(20, int(3_000 * root)),
        "items": max(20, int(8_000 * root)),
    }


def _rng(spec: DatasetSpec) -> np.random.Generator:
    return np.random.default_rng([spec.seed, 2])  # never the first generator's stream


def _power_law_weights(n: int, exponent: float) -> np.ndarray:
    """Chung–Lu weights whose expected degrees follow a power law with ``exponent``."""
    weights = np.arange(1, n + 1, dtype=np.float64) ** (-1.0 / (exponent - 1.0))
    return weights / weights.sum()


def _chung_lu_edges(spec: DatasetSpec) -> list[str]:
    rng = _rng(spec)
    n, m = spec.vertices, spec.records
    src_rank = rng.choice(n, size=m, p=_power_law_weights(n, OUT_DEGREE_EXPONENT))
    dst_rank = rng.choice(n, size=m, p=_power_law_weights(n, IN_DEGREE_EXPONENT))
    # independent orders: the heaviest senders are not the heaviest receivers
    sender, receiver = rng.permutation(n), rng.permutation(n)
    ids = np.unique(rng.integers(0, 1 << ID_SPACE_BITS, size=n + n // 8 + 16))
    rng.shuffle(ids)
    ids = ids[:n]
    src, dst = ids[sender[src_rank]], ids[receiver[dst_rank]]
    keep = src != dst
    return [f"{s} {d}" for s, d in zip(src[keep].tolist(), dst[keep].tolist())]


def _skewed_clusters(spec: DatasetSpec) -> list[str]:
    rng = _rng(spec)
    n, d, k = spec.records, spec.dims, spec.clusters
    weights = rng.dirichlet(np.full(k, 0.5))
    centres = rng.normal(0.0, 6.0, size=(k, d))
    shapes = rng.normal(size=(k, d, d)) / math.sqrt(d) * rng.uniform(0.3, 1.5, size=(k, 1, 1))
    labels = rng.choice(k, size=n, p=weights)
    noise = rng.standard_t(4, size=(n, d))
    x = np.empty((n, d))
    for cluster in range(k):
        members = labels == cluster
        x[members] = centres[cluster] + noise[members] @ shapes[cluster]
    outliers = rng.random(n) < 0.01
    x[outliers] = rng.uniform(-40, 40, size=(int(outliers.sum()), d))
    x[:, -3:] *= rng.random((n, 3)) < 0.1  # three mostly-zero columns
    return [f"{i}," + ",".join(f"{v:.6f}" for v in row) for i, row in enumerate(x.tolist())]


def _quadratic_labels(spec: DatasetSpec) -> list[str]:
    rng = _rng(spec)
    n, d = spec.records, spec.dims
    dense = d - 4
    mixing = rng.normal(size=(dense, dense)) / math.sqrt(dense)
    x = np.empty((n, d))
    x[:, :dense] = rng.normal(size=(n, dense)) @ mixing * rng.uniform(0.5, 2.0, size=dense)
    x[:, dense:] = rng.poisson(0.4, size=(n, 4))  # sparse counts: mostly zero
    w, v = rng.normal(size=d), rng.normal(scale=0.3, size=d)
    score = x @ w + (x * x) @ v + rng.normal(scale=0.5, size=n)
    y = (score > np.quantile(score, 0.8)).astype(int)  # 20 % positives
    flip = rng.random(n) < 0.02
    y[flip] = 1 - y[flip]
    return [
        f"{label}," + ",".join(f"{v:.6f}" for v in row)
        for label, row in zip(y.tolist(), x.tolist())
    ]


def _distinct_pairs(rng, spec: DatasetSpec, activity, popularity) -> np.ndarray:
    """``spec.records`` distinct (user, item) pairs, drawn in rounds: skewed draws repeat."""
    user_order, item_order = rng.permutation(spec.users), rng.permutation(spec.items)
    drawn = np.empty(0, dtype=np.int64)
    while True:
        users = user_order[rng.choice(spec.users, size=spec.records, p=activity)]
        items = item_order[rng.choice(spec.items, size=spec.records, p=popularity)]
        drawn = np.concatenate((drawn, users * spec.items + items))
        _, first = np.unique(drawn, return_index=True)
        if len(first) >= spec.records or len(drawn) > 20 * spec.records:
            return drawn[np.sort(first)[: spec.records]]


def _skewed_ratings(spec: DatasetSpec) -> list[str]:
    rng = _rng(spec)
    u_f = rng.normal(scale=0.5, size=(spec.users, spec.dims))
    i_f = rng.normal(scale=0.5, size=(spec.items, spec.dims))
    u_bias = rng.normal(scale=0.4, size=spec.users)
    i_bias = rng.normal(scale=0.5, size=spec.items)
    activity = 1.0 / np.arange(1, spec.users + 1) ** USER_ACTIVITY_EXPONENT
    popularity = 1.0 / np.arange(1, spec.items + 1) ** ITEM_POPULARITY_EXPONENT
    pairs = _distinct_pairs(rng, spec, activity / activity.sum(), popularity / popularity.sum())
    users, items = pairs // spec.items, pairs % spec.items
    score = (
        3.7
        + u_bias[users]
        + i_bias[items]
        + np.einsum("ij,ij->i", u_f[users], i_f[items])
        + rng.normal(0, 0.4, len(pairs))
    )
    stars = np.clip(np.round(score), 1.0, 5.0)
    ts = 1_100_000_000 + rng.integers(0, 10**8, size=len(pairs))
    return [
        f"{u}::{i}::{r:.1f}::{t}"
        for u, i, r, t in zip(users.tolist(), items.tolist(), stars.tolist(), ts.tolist())
    ]


GENERATORS = {
    "graph": _chung_lu_edges,
    "points": _skewed_clusters,
    "labeled": _quadratic_labels,
    "ratings": _skewed_ratings,
}
