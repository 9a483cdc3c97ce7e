"""A cached dataset nothing reads again is never written to disk (real local Spark, a squeezed
pool of its own).

Why a child application: the write this guards against is Spark's own LRU, which evicts only
from a full storage pool (fixed when the JVM starts; the shared test session's is large). The
program is kmeans.common's shape: parsed records cached, the features made from them cached
in the same task, and every later job reads the features. With a profile that says no later
job reads the records, each records partition has no future read the moment it is stored —
but its task's next put (the features' partition) fills the pool, and had the decision
waited for that task to end (its compute time), Spark would have written the records to disk
first: a copy nothing reads (a dead write, two per run on the suite's kmeans.common).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import run_result_script

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, sys.argv[1])
    from pyspark.sql import SparkSession
    from jobs.run_one import run_conf
    from blaze.manager import active_manager

    folder, mode, profile = sys.argv[2], sys.argv[3], sys.argv[4]
    RECORDS, WIDTH, PARTS = 10_000, 400, 6  # ~4 MB pickled per partition
    POOL = int(2.6 * RECORDS * (WIDTH + 5))
    conf = run_conf(POOL, os.path.join(folder, "events"), "dead-writes")
    conf.update({
        "spark.blaze.enabled": "true",
        "spark.blaze.policy": "blaze",
        "spark.blaze.profile.mode": mode,
        "spark.blaze.profile.path": profile,
    })
    os.makedirs(conf["spark.eventLog.dir"][len("file:"):], exist_ok=True)
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    sc = spark.sparkContext

    def rows(split, items):
        return (os.urandom(WIDTH) for _ in range(RECORDS))

    records = sc.parallelize(range(PARTS), PARTS).mapPartitionsWithIndex(rows).cache()
    features = records.map(lambda row: row[::-1]).cache()
    assert features.count() == PARTS * RECORDS
    level = str(records.getStorageLevel())  # as its first job put it (later unpersisted)
    for _ in range(3):
        assert features.map(len).sum() == PARTS * RECORDS * WIDTH
    manager = active_manager(sc)
    manager.sync()
    explained = manager.explain(records)
    print("RESULT " + json.dumps({
        "records": records.id(),
        "dead_writes": manager.report()["dead_writes"],
        "placed": [e["action"] for e in explained["dataset"]],
        "level": level,
        "first_decisions": sorted(  # each partition's first decision weighing its costs
            next((h["action"], h["F_later"]) for h in p["history"] if "F_later" in h)
            for p in explained["partitions"].values()
            if any("F_later" in h for h in p["history"])
        ),
    }))
    spark.stop()
    """
)


def _records_on_disk(event_dir: Path, rdd_id: int) -> list[str]:
    """The records' blocks Spark itself reported with a disk copy (its event log)."""
    [log] = [p for p in event_dir.iterdir() if not p.name.startswith(".")]
    on_disk = []
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if event["Event"] != "SparkListenerBlockUpdated":
            continue
        info = event["Block Updated Info"]
        if info["Block ID"].startswith(f"rdd_{rdd_id}_") and info["Disk Size"] > 0:
            on_disk.append(info["Block ID"])
    return on_disk


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dead_writes")
    profile = folder / "profile.json"
    results = {}
    for mode in ("record", "use"):  # one program (its sites name its file), run twice
        run = folder / mode
        run.mkdir()
        results[mode] = run_result_script(run, "program.py", CHILD, 600, ROOT, run, mode, profile)
    return folder, results


def test_records_no_later_job_reads_are_dropped_not_written_to_disk(runs):
    """From the profile of the first run (one job read the records). Without a profile the
    first job cannot tell these records from a dataset every iteration derives a new cached
    one from (it is read again): they keep the online guess of one later read."""
    folder, result = runs
    run = result["use"]
    assert "place_in_memory_only" in run["placed"], run
    assert run["level"] == "Memory Serialized 1x Replicated", run  # as PySpark's MEMORY_ONLY
    # every records partition the engine judged (Spark may drop one first) had no later
    # read and was dropped; none ever had a disk copy
    decisions = run["first_decisions"]
    assert decisions and all(d == ["drop", 0.0] for d in decisions), run
    assert _records_on_disk(folder / "use" / "events", run["records"]) == []
    assert run["dead_writes"] == 0, run
