"""Partitions the engine spilled while a stage stored come back to memory, and the book sees
every partition Spark's read path caches back or its LRU drops to disk (real local Spark, a
squeezed pool of its own).

Why a child application: the put room only exists in a pool squeezed to a few partitions
(Spark's storage memory is fixed when the JVM starts), and the shared test session's pool is
large. The child runs the lr.expert shape of the cloud suite — 8 partitions of 40 % of the
pool each on 2 task slots, costly to recompute, cached once and read by several later jobs —
and prints the manager's books next to what the executor's memory store really holds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_result_script, squeezed_child

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[2]


def _run_child(tmp_path_factory, name: str, script: str) -> dict:
    tmp = tmp_path_factory.mktemp(name)
    return run_result_script(tmp, f"{name}.py", script, 600, ROOT, tmp / "events")


CHILD = squeezed_child(
    "blaze",
    """
    PARTS = 8
    computes = [sc.accumulator(0) for _ in range(PARTS)]

    def rows(split, items):  # costly to recompute (as lr's parsed features): disk or memory
        computes[split].add(1)
        time.sleep(0.4)
        return (os.urandom(WIDTH) for _ in range(RECORDS))

    data = sc.parallelize(range(PARTS), PARTS).mapPartitionsWithIndex(rows)
    data.persist(StorageLevel.MEMORY_AND_DISK)
    data.count()
    for _ in range(4):  # later jobs, each reading every partition
        data.map(len).sum()
    manager = active_manager(sc)
    manager.sync()
    report = manager.report()
    bridge = manager.enforcement._storage
    rdd = data.id()
    book = {
        split: manager.ledger.book.blocks[(rdd, split, "driver")].memory_size > 0
        for split in range(PARTS)
    }
    held = {split: bridge.in_memory_store(rdd, split) for split in range(PARTS)}
    entries = manager.explain(data)
    print("RESULT " + json.dumps({
        "computes": [c.value for c in computes],
        "book_in_memory": book,
        "memory_store": held,
        "managed_memory": manager.ledger.book.memory_used("driver"),
        "budget": manager.put_room.budget(),
        "memory_hits": report["memory_hits"],
        "decisions": report["decisions"],
        "order_outcomes": report["order_outcomes"],
        "resync_corrections": report["resync_corrections"],
        "actions": sorted({
            e["action"] for part in entries["partitions"].values() for e in part["history"]
        }),
    }))
    spark.stop()
    """,
)


@pytest.fixture(scope="module")
def child(tmp_path_factory):
    return _run_child(tmp_path_factory, "promotions", CHILD)


def test_partitions_spilled_while_the_stage_stored_come_back_for_the_later_reads(child):
    """The room kept for the storing stage's puts sends partitions to disk; the later jobs
    still read some from memory — the last puts kept there, or partitions the engine
    allowed back when the room freed (which of the two depends on when each put lands; the
    allowance rule itself is unit-tested) — every allowance is carried out, and nothing is
    recomputed."""
    assert child["decisions"].get("admit_disk", 0) >= 1, child
    assert child["memory_hits"] >= 1, child
    outcomes = child["order_outcomes"]
    carried_out = outcomes.get("allow_allowed", 0) + outcomes.get("allow_not_held", 0)
    assert carried_out == child["decisions"].get("allow_back", 0), child
    assert child["computes"] == [1] * 8, child  # nothing recomputed: all read back


def test_the_book_sees_what_sparks_read_path_cached_back(child):
    """Spark caches a disk copy it reads without telling anyone; the plugin reports it, so
    the book's memory copies are the executor's, its budget holds, and no resync corrects."""
    assert any(child["memory_store"].values()), child
    assert child["book_in_memory"] == child["memory_store"], child
    assert child["managed_memory"] <= child["budget"], child
    assert child["resync_corrections"] == 0, child


# Spark's own LRU in the same squeezed pool: two MEMORY_AND_DISK datasets read in turn, so
# each one's puts and read-path caching drop the other's memory copies to disk
LRU_CHILD = squeezed_child(
    "spark",  # the manager observes; Spark's LRU places
    """
    PARTS = 4

    def rows(split, items):
        return (os.urandom(WIDTH) for _ in range(RECORDS))

    manager = active_manager(sc)
    datasets = [
        sc.parallelize(range(PARTS), PARTS).mapPartitionsWithIndex(rows)
        .persist(StorageLevel.MEMORY_AND_DISK)
        for _ in range(2)
    ]
    datasets[0].count()
    bridge = manager.enforcement._storage

    def memory_store():
        return [bridge.in_memory_store(d.id(), s) for d in datasets for s in range(PARTS)]

    first_put = memory_store()
    for _ in range(3):
        for data in datasets:
            data.map(len).sum()
    manager.sync()
    def in_book(data, split):
        record = manager.ledger.book.blocks.get((data.id(), split, "driver"))
        return record is not None and record.memory_size > 0

    book = [in_book(d, s) for d in datasets for s in range(PARTS)]
    print("RESULT " + json.dumps({
        "first_put": first_put,
        "memory_store": memory_store(),
        "book_in_memory": book,
        "book_memory": manager.ledger.book.memory_used("driver"),
        "pool": POOL,
    }))
    spark.stop()
    """,
)


@pytest.fixture(scope="module")
def lru_child(tmp_path_factory):
    return _run_child(tmp_path_factory, "lru", LRU_CHILD)


def test_the_book_follows_sparks_own_drops_to_disk(lru_child):
    """Spark's LRU drops a block's memory copy to disk and reports it with the level's memory
    flag off but the dropped size still in the memory field; the book reads the level, so
    its in-memory partitions stay the executor's and within the pool."""
    first, now = lru_child["first_put"], lru_child["memory_store"]
    assert any(first[:4]) and any(a and not b for a, b in zip(first, now, strict=True)), (
        lru_child  # the first dataset's put kept some in memory, and Spark dropped them since
    )
    assert lru_child["book_in_memory"] == now, lru_child
    assert lru_child["book_memory"] <= lru_child["pool"], lru_child
