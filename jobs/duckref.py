"""Independent reference computations in DuckDB over the same generated Parquet files.

Nothing here shares code with the Spark programs except the dataset format: each reference
parses the text records in SQL and iterates the algorithm in SQL (PageRank, label
propagation, Lloyd's KMeans, gradient descent), so a bug in a job, or a policy that loses or
corrupts a cached partition, shows up as a disagreement. For SVD++ and the MLlib pipeline, whose
results depend on solver internals or seeded sampling, DuckDB instead re-derives the error
(RMSE, scaling, clustering cost, cluster sizes) from the model the job returned.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from jobs.result import JobResult

__all__ = ["REFERENCES", "reference"]


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    return con


def _lines(path: str | Path) -> str:
    return f"read_parquet('{Path(path).as_posix()}/part-*.parquet')"


def _columns(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def pagerank(path, p: dict, _result: JobResult | None = None) -> JobResult:
    """Every vertex (source or target) keeps a rank 0.15 + 0.85 * received contributions."""
    con = _connect()
    d = float(p["damping"])
    con.execute(
        f"""CREATE TABLE edges AS SELECT DISTINCT * FROM (SELECT
              split_part(line, ' ', 1)::BIGINT AS src, split_part(line, ' ', 2)::BIGINT AS dst
            FROM {_lines(path)}) WHERE src <> dst"""
    )
    con.execute("CREATE TABLE outdeg AS SELECT src, count(*) AS deg FROM edges GROUP BY src")
    con.execute(
        """CREATE TABLE ranks AS SELECT DISTINCT v, 1.0::DOUBLE AS r FROM (
             SELECT src AS v FROM edges UNION ALL SELECT dst FROM edges)"""
    )
    for _ in range(p["iterations"]):
        con.execute(
            f"""CREATE OR REPLACE TABLE ranks AS
                SELECT v.v, {1 - d!r} + {d!r} * coalesce(s.total, 0.0) AS r
                FROM ranks v LEFT JOIN (
                  SELECT e.dst AS v, sum(r.r / o.deg) AS total
                  FROM edges e JOIN ranks r ON e.src = r.v JOIN outdeg o ON o.src = e.src
                  GROUP BY e.dst) s ON s.v = v.v"""
        )
    v, r = con.execute("SELECT v, r FROM ranks ORDER BY v").fetchnumpy().values()
    return JobResult(
        "pagerank",
        p["iterations"],
        {"vertex": v.astype(np.int64), "rank": r.astype(np.float64)},
        {"rank_sum": float(r.sum())},
    )


def cc(path, p: dict, _result: JobResult | None = None) -> JobResult:
    con = _connect()
    con.execute(
        f"""CREATE TABLE directed AS SELECT
              split_part(line, ' ', 1)::BIGINT AS a, split_part(line, ' ', 2)::BIGINT AS b
            FROM {_lines(path)}"""
    )
    con.execute(
        """CREATE TABLE edges AS SELECT DISTINCT src, dst FROM (
             SELECT a AS src, b AS dst FROM directed UNION ALL SELECT b, a FROM directed)"""
    )
    con.execute("CREATE TABLE labels AS SELECT DISTINCT src AS v, src AS l FROM edges")
    iterations = 0
    for _ in range(p["max_iterations"]):
        con.execute(
            """CREATE TABLE new_labels AS SELECT v, min(l) AS l FROM (
                 SELECT v, l FROM labels
                 UNION ALL SELECT e.dst AS v, lb.l FROM edges e JOIN labels lb ON e.src = lb.v)
               GROUP BY v"""
        )
        (changed,) = con.execute(
            "SELECT count(*) FROM new_labels n JOIN labels o USING (v) WHERE n.l <> o.l"
        ).fetchone()
        con.execute("DROP TABLE labels")
        con.execute("ALTER TABLE new_labels RENAME TO labels")
        iterations += 1
        if changed == 0:
            break
    v, lab = con.execute("SELECT v, l FROM labels ORDER BY v").fetchnumpy().values()
    return JobResult(
        "cc",
        iterations,
        {"vertex": v.astype(np.int64), "label": lab.astype(np.int64)},
        {"components": float(len(np.unique(lab)))},
    )


def _points_table(con, path, dims: int, first: str, table: str, first_type: str) -> None:
    cols = ", ".join(f"f[{i + 2}]::DOUBLE AS x{i}" for i in range(dims))
    con.execute(
        f"""CREATE TABLE {table} AS SELECT f[1]::{first_type} AS {first}, {cols}
            FROM (SELECT string_split(line, ',') AS f FROM {_lines(path)})"""
    )


def _dims(con, path) -> int:
    (n,) = con.execute(
        f"SELECT len(string_split(line, ',')) - 1 FROM {_lines(path)} LIMIT 1"
    ).fetchone()
    return int(n)


def _distance_sql(dims: int) -> str:
    return " + ".join(f"(p.x{i} - c.x{i}) * (p.x{i} - c.x{i})" for i in range(dims))


def _assign(con, centres: np.ndarray) -> None:
    dims = centres.shape[1]
    frame = pd.DataFrame(centres, columns=_columns("x", dims))
    frame.insert(0, "k", np.arange(len(centres)))
    con.register("centres_df", frame)
    con.execute(
        f"""CREATE OR REPLACE TABLE assigned AS
            SELECT p.id, arg_min(c.k, {_distance_sql(dims)}) AS k,
                   min({_distance_sql(dims)}) AS dist
            FROM pts p CROSS JOIN centres_df c GROUP BY p.id"""
    )
    con.unregister("centres_df")


def _expand(con, dims: int) -> int:
    """Append the squared features (the jobs' expansion): x0..x{2d-1}; returns 2d."""
    squares = ", ".join(f"x{i} * x{i} AS x{dims + i}" for i in range(dims))
    con.execute(f"CREATE OR REPLACE TABLE pts AS SELECT *, {squares} FROM pts")
    return 2 * dims


def kmeans(path, p: dict, _result: JobResult | None = None) -> JobResult:
    con = _connect()
    dims = _dims(con, path)
    _points_table(con, path, dims, "id", "pts", "BIGINT")
    dims = _expand(con, dims)
    k = p["k"]
    xs = ", ".join(_columns("x", dims))
    centres = con.execute(f"SELECT {xs} FROM pts WHERE id < {k} ORDER BY id").fetchnumpy()
    centres = np.column_stack([centres[c] for c in _columns("x", dims)]).astype(np.float64)
    for _ in range(p["iterations"]):
        _assign(con, centres)
        avgs = ", ".join(f"avg(p.x{i}) AS x{i}" for i in range(dims))
        rows = con.execute(
            f"SELECT a.k, {avgs} FROM assigned a JOIN pts p USING (id) GROUP BY a.k"
        ).fetchall()
        centres = centres.copy()
        for row in rows:
            centres[int(row[0])] = row[1:]
    _assign(con, centres)
    (cost,) = con.execute("SELECT sum(dist) FROM assigned").fetchone()
    return JobResult("kmeans", p["iterations"], {"centres": centres}, {"cost": float(cost)})


def lr(path, p: dict, _result: JobResult | None = None) -> JobResult:
    con = _connect()
    dims = _dims(con, path)
    _points_table(con, path, dims, "y", "pts", "DOUBLE")
    feats = ["1.0"] + [f"x{i}" for i in range(dims)] + [f"x{i} * x{i}" for i in range(dims)]
    (n,) = con.execute("SELECT count(*) FROM pts").fetchone()
    w = np.zeros(len(feats))

    def stats(weights: np.ndarray) -> tuple:
        margin = " + ".join(f"{wj!r} * {f}" for wj, f in zip(weights.tolist(), feats))
        grads = ", ".join(f"sum((s - y) * {f})" for f in feats)
        return con.execute(
            f"""SELECT sum(greatest(0, -sm) + ln(1 + exp(-abs(sm)))),
                       sum(CASE WHEN (m > 0) = (y > 0.5) THEN 1 ELSE 0 END), {grads}
                FROM (SELECT y, m, CASE WHEN y > 0.5 THEN m ELSE -m END AS sm,
                             CASE WHEN m >= 0 THEN 1 / (1 + exp(-m))
                                  ELSE exp(m) / (1 + exp(m)) END AS s, *
                      FROM (SELECT ({margin}) AS m, * FROM pts))"""
        ).fetchone()

    for _ in range(p["iterations"]):
        row = stats(w)
        w = w - p["step"] * np.array(row[2:], dtype=np.float64) / n
    row = stats(w)
    return JobResult(
        "lr",
        p["iterations"],
        {"weights": w},
        {"loss": float(row[0]) / n, "accuracy": float(row[1]) / n},
    )


def _frame(con, name: str, columns: dict[str, np.ndarray]) -> None:
    con.register(name, pd.DataFrame(columns))


def svdpp(path, p: dict, result: JobResult) -> JobResult:
    """RMSE of the job's SVD++ model over the ratings, with the implicit term summed in SQL."""
    con = _connect()
    con.execute(
        f"""CREATE TABLE ratings AS SELECT split_part(line, '::', 1)::BIGINT AS u,
              split_part(line, '::', 2)::BIGINT AS i, split_part(line, '::', 3)::DOUBLE AS r
            FROM {_lines(path)}"""
    )
    arrays = result.arrays
    rank = arrays["user_factors"].shape[1]
    items = np.arange(len(arrays["item_bias"]))
    users = {"u": arrays["user_ids"], "bu": arrays["user_bias"]}
    users.update({f"p{k}": arrays["user_factors"][:, k] for k in range(rank)})
    item_cols = {"i": items, "bi": arrays["item_bias"]}
    item_cols.update({f"q{k}": arrays["item_factors"][:, k] for k in range(rank)})
    item_cols.update({f"y{k}": arrays["item_implicit"][:, k] for k in range(rank)})
    _frame(con, "uf", users)
    _frame(con, "itf", item_cols)
    (mu,) = con.execute("SELECT avg(r) FROM ratings").fetchone()
    sums = ", ".join(f"sum(itf.y{k}) / sqrt(count(*)) AS m{k}" for k in range(rank))
    con.execute(f"CREATE TABLE imp AS SELECT u, {sums} FROM ratings JOIN itf USING (i) GROUP BY u")
    dot = " + ".join(f"itf.q{k} * (uf.p{k} + imp.m{k})" for k in range(rank))
    (rmse,) = con.execute(
        f"""SELECT sqrt(avg(power({mu!r} + uf.bu + itf.bi + {dot} - r, 2)))
            FROM ratings JOIN uf USING (u) JOIN itf USING (i) JOIN imp USING (u)"""
    ).fetchone()
    return JobResult("svdpp", result.iterations, {}, {"rmse": float(rmse), "mu": float(mu)})


def mlpipeline(path, p: dict, result: JobResult) -> JobResult:
    """The scaler's deviations, then cost and cluster sizes of the model's centres, in SQL."""
    con = _connect()
    dims = _dims(con, path)
    _points_table(con, path, dims, "id", "pts", "BIGINT")
    stds = con.execute(
        "SELECT " + ", ".join(f"stddev_samp(x{i})" for i in range(dims)) + " FROM pts"
    ).fetchone()
    std = np.array(stds, dtype=np.float64)
    scaled = ", ".join(
        f"x{i} / {s!r} AS x{i}" if s > 0 else f"0.0 AS x{i}" for i, s in enumerate(std.tolist())
    )
    con.execute(f"CREATE OR REPLACE TABLE pts AS SELECT id, {scaled} FROM pts")
    centres = result.arrays["centres"]
    _assign(con, centres)
    sizes = np.zeros(len(centres), dtype=np.int64)
    for k, count in con.execute("SELECT k, count(*) FROM assigned GROUP BY k").fetchall():
        sizes[int(k)] = count
    (cost,) = con.execute("SELECT sum(dist) FROM assigned").fetchone()
    return JobResult(
        "mlpipeline",
        result.iterations,
        {"centres": centres, "sizes": sizes, "std": std},
        {"cost": float(cost)},
    )


REFERENCES = {
    "pagerank": pagerank,
    "cc": cc,
    "svdpp": svdpp,
    "kmeans": kmeans,
    "lr": lr,
    "mlpipeline": mlpipeline,
}
# programs whose reference re-derives the error of the very result it checks
RESULT_DEPENDENT = ("svdpp", "mlpipeline")


def reference(job: str, path, p: dict, result: JobResult) -> JobResult:
    """The DuckDB result to compare ``result`` (the Spark job's, of job or program ``job``)."""
    return REFERENCES[job.partition(".")[0]](path, p, result)
