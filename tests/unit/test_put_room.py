"""Put room and site placement: how much memory stays free for puts, and which generations
go straight to disk (pure Python, the real ledger and registry, no JVM)."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blaze.ledger import Ledger
from blaze.placement import SitePlacement
from blaze.put_room import PUT_ROOM, PutRoom, task_slots
from blaze.registry import ManagedDataset, Registry
from blaze.tracker import UsageTracker
from costmodel.types import Location
from lineage.events import BlockEvent, RddNode, StageRun, StorageLevelInfo

CACHED = StorageLevelInfo(use_disk=True, use_memory=True)
POOL = 100_000


def _raise(what, exc):
    raise exc


def _books(managed=(7,), site="loop.py:9:30"):
    registry = Registry(UsageTracker(), threading.RLock(), _raise)
    for rdd_id in managed:
        registry.datasets[rdd_id] = ManagedDataset(rdd_id, rdd_id, site, "rdd", None, True)
    return registry, Ledger()


def _room(registry, ledger, sizes=None, slots=2, on_disk=(), configured=None):
    return PutRoom(
        storage_memory=POOL,
        configured=configured,
        slots=slots,
        registry=registry,
        ledger=ledger,
        site_sizes=sizes if sizes is not None else {},
        on_disk=set(on_disk),
    )


def _stage(stage_id, rdd_id, tasks=4, parts=4):
    return StageRun(stage_id, 0, "s", tasks, (RddNode(rdd_id, "r", "s", (), parts, CACHED),), ())


@pytest.mark.parametrize(
    ("conf", "parallelism", "executors", "slots"),
    [
        ({"spark.master": "local[2]"}, 2, 1, 2),
        ({"spark.master": "local"}, 1, 1, 1),
        ({"spark.master": "local[4, 3]"}, 4, 1, 4),
        ({"spark.master": "local-cluster[2,1,1536]"}, 2, 2, 1),
        ({"spark.master": "local-cluster[2, 3, 1024]", "spark.task.cpus": "3"}, 6, 2, 1),
        ({"spark.master": "spark://h:7077", "spark.executor.cores": "4"}, 8, 2, 4),
        ({"spark.master": "spark://h:7077"}, 8, 2, 4),
        ({"spark.master": "local[*]"}, 6, 1, 6),
    ],
)
def test_task_slots_per_executor_from_the_conf(conf, parallelism, executors, slots):
    assert task_slots(conf, parallelism, executors) == slots


def test_a_stage_storing_a_managed_dataset_keeps_a_partition_per_slot_free():
    registry, ledger = _books()
    room = _room(registry, ledger, sizes={"loop.py:9:30": {0: 30_000, 1: 20_000}})
    assert room.budget() == POOL - int(POOL * PUT_ROOM)  # nothing stored: the floor only
    assert room.on_stage_submitted(_stage(1, 7))
    assert room.room() == 2 * 30_000 and room.budget() == POOL - 60_000
    room.on_stage_done(1)
    assert room.room() == int(POOL * PUT_ROOM)


def test_a_stage_of_one_task_needs_one_partition_and_room_never_exceeds_the_pool():
    registry, ledger = _books()
    room = _room(registry, ledger, sizes={"loop.py:9:30": {0: 30_000}}, slots=4)
    room.on_stage_submitted(_stage(1, 7, tasks=1))
    assert room.room() == 30_000
    room.on_stage_done(1)
    room.on_stage_submitted(_stage(2, 7, tasks=2))
    room.on_stored(7, 2 * POOL)  # a partition larger than the pool raises the room to the pool
    assert room.room() == POOL and room.budget() == 0


def test_a_stored_put_uses_its_share_and_the_last_puts_keep_room_only_for_those_to_come():
    # the cloud suite's kmeans: 8 partitions of 40 % of the pool, 2 task slots
    registry, ledger = _books()
    room = _room(registry, ledger, sizes={"loop.py:9:30": {0: 40_000}}, slots=2)
    room.on_stage_submitted(_stage(1, 7, tasks=8, parts=8))
    assert room.budget() == POOL - 80_000  # two puts in flight: 20,000 for what stays
    for _ in range(6):  # while two or more tasks are still to store, two puts are in flight
        room.on_stored(7, 40_000)
        assert room.budget() == POOL - 80_000
    room.on_stored(7, 40_000)  # the 7th is judged with room for the one put still to come
    assert room.budget() == POOL - 40_000  # it fits beside that put
    room.on_stored(7, 40_000)  # the 8th: no put to come, the floor only (both fit)
    assert room.budget() == POOL - int(POOL * PUT_ROOM)
    assert room.budget() >= 2 * 40_000
    room.on_stage_done(1)
    assert room.room() == int(POOL * PUT_ROOM)


def test_the_stored_puts_of_one_dataset_do_not_free_the_room_of_a_stage_storing_another():
    registry, ledger = _books(managed=(7, 8))
    room = _room(registry, ledger, sizes={"loop.py:9:30": {0: 20_000}}, slots=2)
    room.on_stage_submitted(_stage(1, 7, tasks=2))
    room.on_stage_submitted(_stage(2, 8, tasks=2))
    assert room.room() == 2 * 20_000
    room.on_stored(7, 20_000)
    room.on_stored(7, 20_000)  # stage 1 has stored all it stores; stage 2 has not begun
    assert room.room() == 2 * 20_000
    room.on_stored(8, 20_000)
    assert room.room() == 20_000


def test_a_stored_partition_larger_than_predicted_raises_the_room():
    registry, ledger = _books()
    room = _room(registry, ledger)  # the site has stored nothing: no prediction
    assert room.on_stage_submitted(_stage(1, 7))
    assert room.room() == int(POOL * PUT_ROOM)
    assert room.on_stored(7, 40_000) and room.room() == 80_000
    assert not room.on_stored(7, 10_000)  # smaller: the room stays
    assert not room.on_stored(8, 90_000)  # another dataset: not this stage's put


def test_a_sites_first_generation_keeps_room_for_the_largest_partition_stored_so_far():
    registry, ledger = _books(managed=(7,), site="loop.py:12:40")
    sizes = {"features.py:3:20": {0: 25_000, 1: 35_000}}  # another site, already stored
    room = _room(registry, ledger, sizes=sizes)
    assert room.on_stage_submitted(_stage(1, 7))
    assert room.room() == 2 * 35_000
    sizes["loop.py:12:40"] = {0: 5_000}  # once the site has stored, its own sizes count
    room.on_stage_done(1)
    room.on_stage_submitted(_stage(2, 7))
    assert room.room() == int(POOL * PUT_ROOM)  # 2 x 5,000 is below the floor


def test_a_stage_storing_two_managed_datasets_keeps_room_for_both_per_task():
    registry, ledger = _books(managed=(7,))
    registry.datasets[8] = ManagedDataset(8, 8, "parse.py:4:18", "rdd", None, True)
    room = _room(registry, ledger)
    nodes = tuple(RddNode(r, "r", "s", (), 4, CACHED) for r in (7, 8))
    assert room.on_stage_submitted(StageRun(1, 0, "s", 4, nodes, ()))
    room.on_stored(7, 10_000)  # the records ...
    room.on_stored(8, 20_000)  # ... and the features parsed from them, in every task
    assert room.room() == 2 * (10_000 + 20_000)


def test_stages_that_store_nothing_managed_need_no_room():
    registry, ledger = _books(managed=(7,))
    registry.datasets[9] = ManagedDataset(9, 9, "x.py:1:2", "rdd", None, False)  # observed only
    room = _room(registry, ledger, sizes={"loop.py:9:30": {0: 30_000}}, on_disk={11})
    registry.datasets[11] = ManagedDataset(11, 11, "loop.py:9:30", "rdd", None, True)
    assert not room.on_stage_submitted(_stage(1, 9))  # not managed
    assert not room.on_stage_submitted(_stage(2, 11))  # persisted DISK_ONLY: no memory put
    for split in range(4):  # every partition of 7 cached: its stage reads, does not store
        ledger.apply_block(BlockEvent(f"rdd_7_{split}", "1", CACHED, 10, 0, None, 7, split))
    assert not room.on_stage_submitted(_stage(3, 7))
    assert room.room() == int(POOL * PUT_ROOM)


def test_a_configured_budget_is_taken_as_given():
    registry, ledger = _books()
    room = _room(registry, ledger, sizes={"loop.py:9:30": {0: 30_000}}, configured=12_345)
    room.on_stage_submitted(_stage(1, 7))
    assert room.budget() == 12_345


def test_a_site_goes_to_disk_when_most_of_its_last_generation_did():
    placement = SitePlacement()
    site = "loop.py:9:30"
    assert not placement.straight_to_disk(site)  # nothing known
    for where in (Location.DISK, Location.MEMORY, Location.DISK):
        placement.record(site, 5, where)
    assert placement.straight_to_disk(site)  # one partition that fitted does not flip it
    placement.record(site, 8, Location.MEMORY)  # a newer generation fits
    assert not placement.straight_to_disk(site)
    placement.record(site, 5, Location.DISK)  # an older generation's late verdict: ignored
    assert not placement.straight_to_disk(site)


@given(st.lists(st.sampled_from([Location.MEMORY, Location.DISK, Location.NONE]), max_size=30))
def test_placement_follows_the_majority_of_the_newest_generations_verdicts(verdicts):
    placement = SitePlacement()
    for where in verdicts:
        placement.record("s", 3, where)
    disk = verdicts.count(Location.DISK)
    assert placement.straight_to_disk("s") == (disk > verdicts.count(Location.MEMORY))


def test_a_datasets_own_stored_partition_replaces_a_larger_prediction():
    # PageRank: ``links`` (a first generation) is predicted by the edges' larger partitions
    registry, ledger = _books(managed=(7,), site="graph.py:40:12")
    room = _room(registry, ledger, sizes={"graph.py:30:8": {0: 40_000}}, slots=2)
    room.on_stage_submitted(_stage(1, 7, tasks=8, parts=8))
    assert room.room() == 2 * 40_000
    assert not room.on_stored(7, 10_000)  # its own size: the room falls to 2 x 10,000
    assert room.room() == 2 * 10_000 and room.budget() == POOL - 20_000
    assert room.on_stored(7, 30_000)  # a larger one of its own raises it again
    assert room.room() == 2 * 30_000
    assert not room.on_stored(7, 20_000)  # a smaller one does not lower its own largest
    assert room.room() == 2 * 30_000
