"""An MLlib DataFrame pipeline: text parsed in SQL, a StandardScaler, then KMeans.

The CSV text column is split and cast into a vector with built-in SQL functions, scaled to
unit variance (``StandardScaler``) and clustered by ``pyspark.ml`` KMeans, whose every
iteration is a Spark job over the scaled features. MLlib caches its own instance RDD
(``MEMORY_AND_DISK``, in the JVM) whenever its input DataFrame is not cached — so the JVM-side
caches of this job exist under every policy, including ``none`` and ``blaze_auto``.
Checked: the scaler's deviations, the centres, the cluster sizes and the cost.

* ``expert``: fits the scaler, caches the scaled features, fits KMeans on them (MLlib then
  adds no cache of its own), unpersists them at the end.
* ``common``: caches the parsed input, fits ``Pipeline([scaler, kmeans])`` on it (MLlib
  caches the scaled instances itself), caches the predictions (two actions read them) and
  unpersists nothing.
"""

from __future__ import annotations

import time

import numpy as np

from jobs.result import JobResult

__all__ = ["DATASET", "NAME", "params", "run"]

NAME = "mlpipeline"
DATASET = "points"
# DataFrame aggregations take execution memory in pages from the same unified pool as the
# cache; below this pool they fail with UNABLE_TO_ACQUIRE_MEMORY for every policy alike
MIN_POOL_BYTES = 8 << 20
# a columnar cache is several times denser than a pickled RDD's: read more points
DATA_SCALE = 4.0


def params(scale: float) -> dict:
    return {"k": 8, "iterations": 10, "seed": 11}


def run(spark, data_path, cacher, p: dict, variant: str = "expert") -> JobResult:
    from pyspark.ml import Pipeline
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.feature import StandardScaler
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    values = F.split(F.col("line"), ",")
    parsed = spark.read.parquet(str(data_path)).select(
        values.getItem(0).cast("long").alias("id"),
        array_to_vector(F.slice(values, 2, 1_000).cast("array<double>")).alias("raw"),
    )
    scaler = StandardScaler(inputCol="raw", outputCol="features", withMean=False, withStd=True)
    kmeans = KMeans(
        k=p["k"], maxIter=p["iterations"], seed=p["seed"], tol=0.0, initMode="k-means||"
    )
    start = time.perf_counter()
    if variant == "common":
        parsed = cacher.df(parsed, "parsed")
        model = Pipeline(stages=[scaler, kmeans]).fit(parsed)
        scaler_model, kmeans_model = model.stages
        predictions = cacher.df(model.transform(parsed), "predictions")
    else:
        scaler_model = scaler.fit(parsed)
        scaled = cacher.df(scaler_model.transform(parsed), "scaled")
        kmeans_model = kmeans.fit(scaled)
        predictions = kmeans_model.transform(scaled)
    seconds = [time.perf_counter() - start]
    centres = np.array([np.asarray(c) for c in kmeans_model.clusterCenters()])
    sizes = np.zeros(len(centres), dtype=np.int64)
    for row in predictions.groupBy("prediction").count().collect():
        sizes[row["prediction"]] = row["count"]
    centres_bc = spark.sparkContext.broadcast(centres)
    cost = (
        predictions.select("features")
        .rdd.map(lambda r: float(((centres_bc.value - r[0].toArray()) ** 2).sum(axis=1).min()))
        .sum()
    )
    if variant != "common":
        cacher.unpersist(scaled)
    return JobResult(
        NAME,
        kmeans_model.summary.numIter,
        arrays={"centres": centres, "sizes": sizes, "std": np.asarray(scaler_model.std)},
        summary={"cost": float(cost)},
        iteration_seconds=seconds,
    )
