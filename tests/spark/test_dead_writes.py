"""A cached dataset nothing reads again is never written to disk (real local Spark, a squeezed
pool of its own).

Why a child application: the write this guards against is Spark's own LRU, which evicts only
from a full storage pool (fixed when the JVM starts; the shared test session's is large). The
program is kmeans.common's shape: parsed records cached, the features made from them cached
in the same task, and every later job reads the features. Each records partition has no
future read the moment it is stored, but its task's next put (the features' partition) fills
the pool before any order of the engine can reach the executor: Spark's LRU wrote the records
to disk — copies nothing reads (dead writes: two per run on the suite's kmeans.common). With
the profile, the records are put in memory only (:mod:`blaze.placement`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_result_script, squeezed_child

from jobs.eventlog import find_event_log
from lineage.eventlog import read_event_log
from lineage.events import BlockEvent

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[2]

CHILD = squeezed_child(
    "blaze",
    """
    PARTS = 6

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
    """,
    more_conf='{"spark.blaze.profile.mode": sys.argv[3], "spark.blaze.profile.path": sys.argv[4]}',
)


def _records_on_disk(event_dir: Path, rdd_id: int) -> list[str]:
    """The records' blocks Spark itself reported holding a disk copy (its event log)."""
    events, _ = read_event_log(find_event_log(event_dir))
    return [
        e.block_id
        for e in events
        if isinstance(e, BlockEvent) and e.rdd_id == rdd_id and e.disk_held > 0
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dead_writes")
    profile = folder / "profile.json"
    results = {}
    for mode in ("record", "use"):  # one program (its sites name its file), run twice
        run = folder / mode
        run.mkdir()
        events = run / "events"
        results[mode] = run_result_script(
            run, "program.py", CHILD, 600, ROOT, events, mode, profile
        )
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
