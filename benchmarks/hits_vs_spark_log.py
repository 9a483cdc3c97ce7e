"""Does the manager's ``hits`` equal the cached-block reads Spark itself logged?

Usage: python benchmarks/hits_vs_spark_log.py [--examples pagerank,transitive_closure,...]

Not a timing benchmark: each example (the shapes of Spark's own PySpark examples, small) runs
in its own Python process with the manager attached (``mem_only``, ample budget, autoCache
off, so only the program's own caches count) and Spark's INFO log on; the ground truth is
the number of ``Found block rdd_<id>_<split> locally`` lines Spark's BlockManager wrote (one
per cached-block read in a task), compared with the report's ``hits``. Prints one row per
example; exits 1 when any differs.
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys

EXAMPLES = ("pagerank", "transitive_closure", "mllib_kmeans", "ml_kmeans")
_READ = re.compile(r"Found block rdd_\d+_\d+ locally")


def _pagerank(spark) -> None:
    sc = spark.sparkContext
    lines = sc.parallelize([f"{i} {(i * 7 + j) % 20}" for i in range(20) for j in range(3)], 2)
    links = lines.map(lambda line: tuple(line.split())).distinct().groupByKey().cache()
    ranks = links.map(lambda kv: (kv[0], 1.0))
    for _ in range(5):
        contribs = links.join(ranks).flatMap(
            lambda kv: [(n, kv[1][1] / len(kv[1][0])) for n in kv[1][0]]
        )
        ranks = contribs.reduceByKey(lambda a, b: a + b).mapValues(lambda r: r * 0.85 + 0.15)
    ranks.collect()


def _transitive_closure(spark) -> None:
    rand = random.Random(42)
    edges_set: set[tuple[int, int]] = set()
    while len(edges_set) < 60:
        src, dst = rand.randrange(30), rand.randrange(30)
        if src != dst:
            edges_set.add((src, dst))
    tc = spark.sparkContext.parallelize(sorted(edges_set), 2).cache()
    edges = tc.map(lambda e: (e[1], e[0]))
    old_count, next_count = 0, tc.count()
    while next_count != old_count:
        old_count = next_count
        new_edges = tc.join(edges).map(lambda kv: (kv[1][1], kv[1][0]))
        tc = tc.union(new_edges).distinct().cache()
        next_count = tc.count()


def _mllib_kmeans(spark) -> None:
    from pyspark.mllib.clustering import KMeans

    data = spark.sparkContext.parallelize([[float(i % 7), float(i % 3)] for i in range(600)], 2)
    KMeans.train(data, 2, maxIterations=10)


def _ml_kmeans(spark) -> None:
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.linalg import Vectors

    rows = [(Vectors.dense([float(i % 7), float(i % 3)]),) for i in range(600)]
    KMeans().setK(2).setSeed(1).fit(spark.createDataFrame(rows, ["features"]))


def run_one(name: str) -> None:
    """In this process: run one example under the manager and print its report's hits."""
    import blaze

    conf = {"spark.ui.enabled": "false", "spark.blaze.enabled": "false", "spark.master": "local[2]"}
    spark = blaze.session(conf, app_name=f"hits-{name}")
    spark.sparkContext.setLogLevel("INFO")
    manager = blaze.attach(spark, policy="mem_only", memory_budget="1g", auto_cache=False)
    try:
        globals()[f"_{name}"](spark)
        print("BLAZE_HITS", manager.report()["hits"], flush=True)
    finally:
        manager.detach()
        spark.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", default=",".join(EXAMPLES))
    parser.add_argument("--run-one", choices=EXAMPLES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_one:
        run_one(args.run_one)
        return
    differ = False
    print("| example | report hits | Spark's logged cached-block reads | equal |")
    print("| --- | ---: | ---: | --- |")
    for name in args.examples.split(","):
        proc = subprocess.run(
            [sys.executable, __file__, "--run-one", name],
            capture_output=True,
            text=True,
            timeout=900,
        )
        found = re.search(r"BLAZE_HITS (\d+)", proc.stdout)
        if proc.returncode != 0 or not found:
            print(f"| {name} | failed: {proc.stderr.strip().splitlines()[-1:]} | | no |")
            differ = True
            continue
        hits, reads = int(found.group(1)), len(_READ.findall(proc.stderr))
        differ |= hits != reads
        print(f"| {name} | {hits} | {reads} | {'yes' if hits == reads else 'no'} |", flush=True)
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
