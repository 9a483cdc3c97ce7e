"""``pyspark.ml`` KMeans over a DataFrame: the suite's JVM-side cache.

The CSV text column is split and cast into a feature vector with built-in SQL functions, the
feature DataFrame is persisted (columnar, in the JVM) and MLlib's KMeans runs on it; every
one of its iterations is a Spark job reading the cache. When the input is *not* persisted
(policy ``none``) MLlib persists its own instance RDD at MEMORY_AND_DISK, as it does for any
caller — so ``none`` is not cache-free for this job, and the table says so by its numbers.
The result checked is the final centres, the cluster sizes and the cost of the final model.
"""

from __future__ import annotations

import time

import numpy as np

from jobs.result import JobResult

__all__ = ["DATASET", "NAME", "params", "run"]

NAME = "mlkmeans"
DATASET = "points"
# DataFrame aggregations take execution memory in pages (256 KiB per task at small pools)
# from the same unified pool as the cache; below this pool size they fail with
# UNABLE_TO_ACQUIRE_MEMORY instead of running slower, so the runner never squeezes below it
MIN_POOL_BYTES = 8 << 20
# a columnar cache is ~5x denser than the RDD jobs' pickled one: read 4x the points so the
# footprint is still several times the pool at the suite's scale (4 MiB pools failed
# intermittently, for every policy alike, when both tasks' cached blocks were locked)
DATA_SCALE = 4.0


def params(scale: float) -> dict:
    return {"k": 8, "iterations": 10, "seed": 11}


def run(spark, data_path, cacher, p: dict) -> JobResult:
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    raw = spark.read.parquet(str(data_path))
    values = F.split(F.col("line"), ",")
    parsed = raw.select(
        values.getItem(0).cast("long").alias("id"),
        F.slice(values, 2, 1_000).cast("array<double>").alias("x"),
    )
    features = cacher.df(parsed.select("id", array_to_vector("x").alias("features")), "features")
    start = time.perf_counter()
    features.count()
    model = KMeans(
        k=p["k"], maxIter=p["iterations"], seed=p["seed"], tol=0.0, initMode="k-means||"
    ).fit(features)
    seconds = [time.perf_counter() - start]
    centres = np.array([np.asarray(c) for c in model.clusterCenters()])
    predictions = model.transform(features)
    sizes = np.zeros(len(centres), dtype=np.int64)
    for row in predictions.groupBy("prediction").count().collect():
        sizes[row["prediction"]] = row["count"]
    centres_bc = spark.sparkContext.broadcast(centres)
    cost = (
        predictions.select("features")
        .rdd.map(lambda r: float(((centres_bc.value - r[0].toArray()) ** 2).sum(axis=1).min()))
        .sum()
    )
    cacher.unpersist(features)
    return JobResult(
        NAME,
        model.summary.numIter,
        arrays={"centres": centres, "sizes": sizes},
        summary={"cost": float(cost)},
        iteration_seconds=seconds,
    )
