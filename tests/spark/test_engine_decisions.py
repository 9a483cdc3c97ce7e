"""The engine's decisions on real local Spark, checked against the decision log and against
partition compute counters (accumulators inside the user's functions), not only answers."""

from __future__ import annotations

import time
from operator import add

import pytest
from conftest import attached_managers
from pyspark import StorageLevel

import blaze
from blaze_cli import main as blaze_main

pytestmark = pytest.mark.spark

SLOW_DISK = {"disk_write_ms_per_mib": 2000, "disk_read_ms_per_mib": 2000}
PARTS = 4


@pytest.fixture
def attach(spark, bridge):
    """Attach managers for one test; detach them and unpersist what the test cached."""
    yield from attached_managers(spark, bridge)


def counters(sc, parts=PARTS):
    return [sc.accumulator(0) for _ in range(parts)]


def values(accumulators) -> dict[int, int]:
    return {i: a.value for i, a in enumerate(accumulators)}


def costly_dataset(sc, accumulators, records=2000):
    """A long narrow lineage of costly Python work (sleeps stand for parsing/features)."""

    def tag(split, rows):
        accumulators[split].add(1)
        time.sleep(0.25)
        return ((x, str(x) * 4) for x in rows)

    rdd = sc.parallelize(range(records * PARTS), PARTS)
    for step in range(4):
        rdd = rdd.map(lambda x, step=step: x + step - step)
    return rdd.mapPartitionsWithIndex(tag)


def cheap_dataset(sc, accumulators, records=12_000):
    def tag(split, rows):
        accumulators[split].add(1)
        return ((x, str(x) * 8) for x in rows)

    return sc.parallelize(range(records * PARTS), PARTS).mapPartitionsWithIndex(tag)


def _blaze_on_a_fast_disk(sc, attach, bridge, *, partitions_of_budget: float, **options):
    """A Blaze manager on a 1 ms/MiB disk whose budget holds ``partitions_of_budget`` of a
    costly dataset's partitions (measured by a probe run under plain Spark); ``options`` go
    to ``attach`` as well."""
    probe = attach(policy="spark")
    sample = costly_dataset(sc, counters(sc), records=250).cache()
    sample.count()
    probe.sync()
    part = max(stored_bytes(bridge, sample.id()).values())
    probe.detach()
    sample.unpersist(blocking=True)
    return attach(
        policy="blaze",
        memory_budget=int(partitions_of_budget * part),
        disk_write_ms_per_mib=1,
        disk_read_ms_per_mib=1,
        **options,
    )


def stored_bytes(bridge, rdd_id):
    return {
        b.split_index: max(b.memory_size, b.disk_size)
        for s in bridge.storage_status()
        for b in s.blocks
        if b.rdd_id == rdd_id
    }


def test_blaze_keeps_the_costly_dataset_and_drops_the_cheap_larger_one(sc, attach, bridge):
    probe = attach(policy="blaze", **SLOW_DISK)
    costly = costly_dataset(sc, counters(sc)).persist(blaze.BLAZE)
    cheap = cheap_dataset(sc, counters(sc)).persist(blaze.BLAZE)
    costly.count(), cheap.count()
    probe.sync()
    costly_bytes = sum(stored_bytes(bridge, costly.id()).values())
    cheap_part = max(stored_bytes(bridge, cheap.id()).values())
    probe.detach()
    costly.unpersist(blocking=True)
    cheap.unpersist(blocking=True)
    assert cheap_part * PARTS > 2 * costly_bytes  # the cheap one is the larger

    budget = int(costly_bytes + 2.3 * cheap_part)
    manager = attach(policy="blaze", memory_budget=budget, **SLOW_DISK)
    costly_runs, cheap_runs = counters(sc), counters(sc)
    costly = costly_dataset(sc, costly_runs).persist(blaze.BLAZE)
    cheap = cheap_dataset(sc, cheap_runs).persist(blaze.BLAZE)
    for _ in range(2):
        assert costly.count() == 2000 * PARTS
        assert cheap.count() == 12_000 * PARTS
    manager.sync()

    assert values(costly_runs) == dict.fromkeys(range(PARTS), 1)  # computed once each
    assert sum(values(cheap_runs).values()) > PARTS  # some cheap partitions recomputed
    costly_view, cheap_view = manager.explain(costly), manager.explain(cheap)
    assert {p["state"] for p in costly_view["partitions"].values()} == {"MEMORY"}
    costly_actions = {e["action"] for p in costly_view["partitions"].values() for e in p["history"]}
    assert costly_actions == {"admit"}
    cheap_history = [e for p in cheap_view["partitions"].values() for e in p["history"]]
    drops = [e for e in cheap_history if e["action"] == "drop"]
    assert drops and not [e for e in cheap_history if e["action"] == "spill"]
    for entry in drops:  # dropped because recomputing is cheaper than the disk round trip
        assert entry["comp_cost"] < entry["disk_cost"]
        assert set(entry) >= {"F", "R", "W", "Rd", "cost", "size", "rule"}
    assert manager.report()["decisions"].get("spill_to_disk", 0) == 0


def test_evicting_a_parent_raises_its_cached_childs_cost_in_explain(sc, attach, bridge):
    runs = counters(sc)
    manager = attach(policy="mem_only", disk_write_ms_per_mib=1, disk_read_ms_per_mib=1)
    parent = costly_dataset(sc, runs, records=500).persist(blaze.BLAZE)
    parent.count()
    manager.sync()
    parent_bytes = sum(stored_bytes(bridge, parent.id()).values())
    manager.detach()
    parent.unpersist(blocking=True)

    runs = counters(sc)
    manager = attach(
        policy="mem_only",
        memory_budget=int(parent_bytes * 1.6),
        disk_write_ms_per_mib=1,
        disk_read_ms_per_mib=1,
    )
    parent = costly_dataset(sc, runs, records=500).persist(blaze.BLAZE)
    parent.count()
    child = parent.map(lambda kv: (kv[0], kv[1] * 2)).persist(blaze.BLAZE)
    child.count()
    manager.sync()
    propagated = [e for p in manager.explain(child)["partitions"].values() for e in p["history"]]
    propagated = [e for e in propagated if e["action"] == "propagate"]
    assert propagated, manager.explain(child)
    for entry in propagated:
        assert entry["R"] > entry["R_before"]
        assert entry["rule"].startswith(f"parent rdd {parent.id()} ")
    dropped_parents = {
        split
        for split, p in manager.explain(parent)["partitions"].items()
        if any(e["action"] == "drop" for e in p["history"])
    }
    assert {e["split"] for e in propagated} <= dropped_parents


def test_read_once_never_auto_cached_and_reused_one_is_with_fewer_computations(sc, attach):
    def program():
        once_runs, reused_runs = counters(sc), counters(sc)

        def tag(accumulators):
            def f(split, rows):
                accumulators[split].add(1)
                return iter(list(rows))

            return f

        once = sc.parallelize(range(800), PARTS).mapPartitionsWithIndex(tag(once_runs))
        reused = sc.parallelize(range(800), PARTS).mapPartitionsWithIndex(tag(reused_runs))
        answers = [once.map(lambda x: x * 3).sum()]
        for i in range(4):
            answers.append(reused.map(lambda x, i=i: x + i).sum())
        return answers, once, reused, sum(values(once_runs).values()), values(reused_runs)

    plain_answers, _, _, _, plain_reused = program()
    manager = attach(policy="blaze")
    answers, once, reused, once_runs, reused_runs = program()
    manager.sync()
    assert answers == plain_answers
    assert not once.is_cached and once_runs == PARTS
    assert reused.is_cached
    assert sum(reused_runs.values()) < sum(plain_reused.values())  # 8 with the flag, 16 without
    log = manager.explain(reused)["dataset"]
    assert [e["action"] for e in log] == ["auto_cache"]
    assert manager.explain(once)["dataset"] == []


def test_dead_rdd_and_dataframe_generations_are_unpersisted_before_the_next_job(
    spark, sc, attach, bridge
):
    manager = attach(policy="blaze")
    ranks = sc.parallelize(range(400), PARTS).map(lambda x: (x, 1.0)).persist(blaze.BLAZE)
    rdd_ids = [ranks.id()]
    for _ in range(4):
        ranks = ranks.mapValues(lambda v: v * 0.5 + 1.0).persist(blaze.BLAZE)
        ranks.count()
        rdd_ids.append(ranks.id())
    frame, frames = spark.range(2000).selectExpr("id", "id * 1.0 AS v"), []
    for _ in range(5):
        frame = frame.selectExpr("id", "v * 0.5 + 1.0 AS v").persist(blaze.BLAZE)
        frame.count()
        frames.append(frame)
    # before the next job of the program runs, the dead generations are gone
    assert frames[-1].selectExpr("sum(v)").collect()[0][0] > 0
    persisted = bridge.persistent_rdd_ids()
    # the loop's superseded generations (the seed before the loop is a one-off: kept)
    assert not persisted & set(rdd_ids[1:-2]), (persisted, rdd_ids)
    assert all(bridge.dataframe_rdd_id(f) is None for f in frames[:-2])
    # the live generation keeps the RDD the manager books: unpersisting an ancestor while it
    # was being computed made Spark rebuild it under a new id, its stored batches dropped
    live = manager.explain(frames[-1])
    assert live["managed"] and live["rdd"] == bridge.dataframe_rdd_id(frames[-1])
    assert live["partitions"] and all(p["state"] == "MEMORY" for p in live["partitions"].values())
    kinds = {
        e.get("kind")
        for f in (*frames[:-2],)
        for e in manager.explain(f)["dataset"]
        if e["action"] == "auto_unpersist"
    }
    assert kinds == {"dataframe"}


def test_a_dataframe_persisted_before_its_base_is_unpersisted_is_followed_to_its_new_rdd(
    spark, attach, bridge
):
    """Unpersisting a superseded generation makes Spark rebuild, under a new RDD id, a cached
    DataFrame made from it and not computed yet: the manager's books follow it there."""
    manager = attach(policy="blaze")
    frame, frames, sides = spark.range(2000).selectExpr("id", "id * 1.0 AS v"), [], []
    for i in range(5):
        frame = frame.selectExpr("id", "v * 0.5 + 1.0 AS v").persist(blaze.BLAZE)
        frame.count()
        frames.append(frame)
        if i == 2:  # a side dataset on each generation still cached, not computed yet; the
            # next generations supersede the one it comes from
            sides = [
                f.selectExpr("id", f"v + {n}.0 AS w").persist(blaze.BLAZE)
                for n, f in enumerate(frames)
                if bridge.dataframe_rdd_id(f) is not None
            ]
            booked = [manager.explain(side)["rdd"] for side in sides]
    now = [bridge.dataframe_rdd_id(side) for side in sides]
    assert any(n != b for n, b in zip(now, booked, strict=True))  # Spark rebuilt one at least
    assert [manager.explain(side)["rdd"] for side in sides] == now
    for side in sides:
        assert side.selectExpr("sum(w)").collect()[0][0] > 0
        stored = manager.explain(side)["partitions"]
        assert stored and all(p["state"] == "MEMORY" for p in stored.values())


def test_report_counters_agree_with_spark_and_the_program(sc, attach, bridge, tmp_path):
    path = tmp_path / "decisions.jsonl"
    manager = attach(policy="blaze", explain_path=str(path))
    runs = counters(sc)

    def tag(split, rows):
        runs[split].add(1)
        return ((x, "r" * 10) for x in rows)

    data = sc.parallelize(range(4000), PARTS).mapPartitionsWithIndex(tag).persist(blaze.BLAZE)
    other = sc.parallelize(range(100), 6)
    for _ in range(3):
        assert data.count() == 4000
    assert data.keys().union(other).count() == 4100  # a union stage: other task indexes
    manager.sync()
    report = manager.report()
    computed = sum(values(runs).values())
    assert computed == PARTS
    assert report["misses"] == computed
    assert report["recomputed_partitions"] == 0
    assert report["hits"] == 3 * PARTS  # the union's tasks read data's partitions too
    assert len(stored_bytes(bridge, data.id())) == PARTS
    assert report["listener_events_dropped"] == 0
    manager.detach()
    final = manager.report(sync=False)
    assert final["attached"] is True and final["detached_at"] is not None
    assert final["decision_log"] == str(path)
    assert blaze_main(["explain", str(path)]) == 0
    assert blaze_main(["explain", str(tmp_path / "missing.jsonl")]) == 2


def _three_datasets(sc, parts=2, records=3000):
    """Three equal datasets (same records, so the same stored size per partition), each made
    on its own line: three program sites, not three generations of one."""

    def make(tag):
        return sc.parallelize(range(records * parts), parts).map(lambda x: (x % 50, f"{tag}{x}"))

    a = make("a")
    b = make("b")
    c = make("c")
    return a, b, c


def _victims_of(manager, incoming) -> list[tuple[int, int, str]]:
    """The victims listed by the decisions that admitted ``incoming``'s partitions."""
    history = manager.explain(incoming)["partitions"].values()
    return [tuple(v) for p in history for e in p["history"] for v in e.get("victims", [])]


def _squeezed(sc, attach, bridge, policy, parts=2):
    """A manager whose budget holds two of the three datasets and a half: the second of
    c's partitions makes room by evicting one partition of a or b."""
    probe = attach(policy="spark")
    sample = _three_datasets(sc, parts)[0].cache()
    sample.count()
    probe.sync()
    one = sum(stored_bytes(bridge, sample.id()).values())
    probe.detach()
    sample.unpersist(blocking=True)
    return attach(policy=policy, memory_budget=int(2.5 * one))


def _c_evicts_a_or_b(sc, attach, bridge, policy, b_readers):
    """The published baselines on the program's own ``cache()`` calls: b then a are computed
    (so a is the more recently used: LRU would evict b); then one job computes c and reads b
    in ``b_readers`` later stages, while a is read by no stage of it (only, as predicted,
    by a later job). Every input of c's decisions is in the DAG of that job, which the
    manager has seen before c's first block (a job's start precedes its tasks' events)."""
    manager = _squeezed(sc, attach, bridge, policy)
    a, b, c = (d.cache() for d in _three_datasets(sc))
    assert b.count() == a.count() == 6000
    step = c.reduceByKey(lambda x, y: x).union(b).reduceByKey(lambda x, y: x)
    if b_readers > 1:
        step = step.union(b.mapValues(str.upper))
    assert step.reduceByKey(lambda x, y: x).count() == 50
    manager.sync()
    return manager, a, b, c


def test_mrd_evicts_the_farthest_next_reference_and_prefetches_it_before_its_read(
    sc, attach, bridge
):
    manager, a, b, c = _c_evicts_a_or_b(sc, attach, bridge, "mrd", b_readers=1)
    victims = _victims_of(manager, c)
    assert victims, "c's arrival under pressure chose no victim"
    assert {v[0] for v in victims} == {a.id()}  # a (next read: a later job), never b
    assert all(where == "DISK" for _, _, where in victims)  # MRD spills its victims
    for split, part in manager.explain(b)["partitions"].items():
        assert part["state"] == "MEMORY", (split, part)
    spilled = {v[1] for v in victims}

    # memory frees (a stage completes, the program unpersists c): MRD reads a's spilled
    # partitions back before the next job reads them — that read is a memory hit, and the
    # disk read came before it
    c.unpersist()
    prefetched = [
        e
        for split in spilled
        for e in manager.explain(a)["partitions"][split]["history"]
        if e["action"] == "prefetch"
    ]
    assert {e["split"] for e in prefetched} == spilled, manager.explain(a)
    read = sum(e["disk_bytes_read"] for e in prefetched)
    middle = manager.report()
    assert read > 0 and middle["disk_bytes_read"] >= read
    assert a.count() == 6000
    after = manager.report()
    assert after["disk_hits"] == middle["disk_hits"]  # the reference found them in memory
    assert after["memory_hits"] >= middle["memory_hits"] + 2
    assert after["disk_bytes_read"] == middle["disk_bytes_read"]


def test_lrc_evicts_the_smallest_count_of_references_to_come(sc, attach, bridge):
    manager, a, b, c = _c_evicts_a_or_b(sc, attach, bridge, "lrc", b_readers=2)
    victims = _victims_of(manager, c)
    assert victims, "c's arrival under pressure chose no victim"
    assert {v[0] for v in victims} == {a.id()}  # a: one read to come; b: two more in the job
    assert all(where == "DISK" for _, _, where in victims)
    for split, part in manager.explain(b)["partitions"].items():
        assert part["state"] == "MEMORY", (split, part)
    counted = [
        e["refs_to_come"]
        for p in manager.explain(c)["partitions"].values()
        for e in p["history"]
        if e.get("victims")
    ]
    assert counted  # the decisions recorded LRC's input


def test_baselines_act_on_the_programs_calls_only(sc, attach):
    """lrc and mrd take no autoCache and no autoUnpersist: a dataset read by two jobs but
    never cached stays uncached, and a cached one the program never unpersists stays."""
    for policy in ("lrc", "mrd"):
        manager = attach(policy=policy)
        reused = sc.parallelize(range(400), PARTS).map(lambda x: x + 1)
        kept = sc.parallelize(range(400), PARTS).map(lambda x: x * 2).cache()
        for _ in range(3):
            assert reused.sum() == sum(range(1, 401))
            assert kept.sum() == 2 * sum(range(400))
        manager.sync()
        assert not reused.is_cached
        assert kept.is_cached and manager.explain(kept)["managed"]
        decisions = manager.report()["decisions"]
        assert "auto_cache" not in decisions and "auto_unpersist" not in decisions
        assert manager.config.auto_cache is False and manager.config.auto_unpersist is False
        manager.detach()
        kept.unpersist(blocking=True)


def _iterations(sc, feats, jobs=5):
    """Per iteration, ``x`` = ten quick records per record of ``feats``, persisted; its job
    reads it (and the previous ``x``, zipped) and does 0.6 s of work per partition after it
    in the same stage. Returns the answers and each ``x``'s per-partition compute counters."""

    def slow(rows):
        time.sleep(0.6)  # the stage's own costly work, downstream of the cached data
        return (len(str(row)) for row in rows)

    x_runs, previous, answers = [], None, []
    for i in range(jobs):
        runs = counters(sc)
        x_runs.append(runs)

        def widen(split, rows, runs=runs, i=i):
            runs[split].add(1)
            return ((k, j, str(k * 7919 + j * 104_729 + i)) for k, _ in rows for j in range(10))

        x = feats.mapPartitionsWithIndex(widen, preservesPartitioning=True).persist(blaze.BLAZE)
        both = x if previous is None else x.zip(previous)
        answers.append(both.mapPartitions(slow).count())
        previous = x
    return answers, x_runs


def test_a_cheap_per_iteration_dataset_is_dropped_not_written_and_no_write_is_dead(
    sc, attach, bridge
):
    """A costly, small dataset every job reads (``feats``) and a cheap, larger one made per
    iteration, read by its own job and the next and never again (``x``). On this slow disk
    (2 s/MiB) writing and reading an ``x`` partition costs more than recomputing it — but
    less than the task that computed it took: R must be ``x``'s own time, not the task's.
    What of ``feats`` does not fit goes to disk and is read back by later jobs, and no disk
    copy dies unread."""
    probe = attach(policy="spark")
    sample = costly_dataset(sc, counters(sc), records=250).cache()
    _iterations(sc, sample, jobs=1)
    probe.sync()
    feats_part = max(stored_bytes(bridge, sample.id()).values())
    x_id = max(bridge.persistent_rdd_ids())
    x_part = max(stored_bytes(bridge, x_id).values())
    probe.detach()
    for rdd_id in (sample.id(), x_id):
        bridge.unpersist_rdd(rdd_id, blocking=True)

    feats_runs = counters(sc)
    disk = {"disk_write_ms_per_mib": 2000, "disk_read_ms_per_mib": 2000}
    budget = int(2.5 * feats_part + 1.2 * x_part)  # half of feats, and one x partition
    manager = attach(policy="blaze", memory_budget=budget, **disk)
    feats = costly_dataset(sc, feats_runs, records=250).persist(blaze.BLAZE)
    answers, x_runs = _iterations(sc, feats)
    assert feats.count() == 1000  # the program reads its features once more at the end
    manager.sync()
    report = manager.report()

    assert answers == [10_000] * 5
    assert values(feats_runs) == dict.fromkeys(range(PARTS), 1)  # feats computed once
    decisions = list(manager.decision_log)
    x_entries = [e for e in decisions if "split" in e and e["rdd"] != feats.id()]
    assert x_entries and not [e for e in x_entries if e["action"] == "spill"], x_entries
    drops = [e for e in x_entries if e["action"] == "drop"]
    assert drops, "no x partition was ever squeezed out: the test did not test"
    for entry in drops:  # R is x's own compute: cheaper than the disk, and not the task's
        assert entry["comp_cost"] < entry["disk_cost"], entry
        assert entry["R"] < 600, entry
    for runs in x_runs:  # computed by its job, at most recomputed by the next: never read
        assert all(1 <= n <= 2 for n in values(runs).values()), values(runs)
    assert report["dead_writes"] == 0


def test_what_goes_to_disk_is_read_back_no_write_is_dead(sc, attach, bridge):
    """A costly dataset read by three jobs, in a budget of two and a half of its four
    partitions, on a fast disk: the partitions that do not fit go to disk (writing and
    reading them beats recomputing) and the next job reads them there — every disk write
    is read at least once, and the report counts no dead write."""
    runs = counters(sc)
    manager = _blaze_on_a_fast_disk(sc, attach, bridge, partitions_of_budget=2.5)
    data = costly_dataset(sc, runs, records=250).persist(blaze.BLAZE)
    for _ in range(3):
        assert data.map(lambda kv: kv[0]).sum() == sum(range(1000))
    manager.sync()
    report = manager.report()
    assert values(runs) == dict.fromkeys(range(PARTS), 1)  # never recomputed
    history = [e for p in manager.explain(data)["partitions"].values() for e in p["history"]]
    spills = [e for e in history if e["action"] == "spill"]
    assert spills, "nothing went to disk: the test did not test"
    for entry in spills:  # to disk because writing and reading beat recomputing
        assert entry["disk_cost"] < entry["comp_cost"], entry
    assert report["disk_bytes_written"] > 0 and report["disk_hits"] >= len(spills)
    assert report["dead_writes"] == 0


def test_with_a_profile_a_dataset_read_by_one_job_is_never_written_to_disk(
    sc, attach, bridge, tmp_path
):
    """cc.common's parsed edges: a costly dataset the program caches and reads in one job
    only, through the shuffle that builds the table every later job reads. Learning online,
    the manager takes that one job's read for a dataset read by every job and, on a fast
    disk, writes what does not fit to disk — copies nothing reads back (dead writes). With
    the profile of an earlier run (on fewer records) it knows the dataset's one use: its
    partitions that do not fit are dropped, none is written, and no answer changes."""
    path = tmp_path / "profile.json"

    def program(records):
        runs = counters(sc)
        edges = costly_dataset(sc, runs, records=records).persist(blaze.BLAZE)
        table = edges.map(lambda kv: (kv[0] % 97, 1)).reduceByKey(add, PARTS)
        table = table.persist(blaze.BLAZE)
        sums = [table.map(lambda kv, i=i: kv[1] * i).sum() for i in range(1, 4)]
        assert sums == [i * records * PARTS for i in range(1, 4)]
        return edges, table, runs

    recorder = attach(policy="blaze", profile_mode="record", profile_path=str(path))
    for dataset in program(100)[:2]:
        dataset.unpersist(blocking=True)
    recorder.detach()
    assert path.is_file()

    dead = {}
    for mode in ("off", "use"):
        options = {} if mode == "off" else {"profile_mode": "use", "profile_path": str(path)}
        manager = _blaze_on_a_fast_disk(sc, attach, bridge, partitions_of_budget=2.5, **options)
        edges, table, runs = program(250)
        manager.sync()
        spills = [
            e
            for p in manager.explain(edges)["partitions"].values()
            for e in p["history"]
            if e["action"] == "spill"
        ]
        dead[mode] = (manager.report()["dead_writes"], len(spills))
        assert values(runs) == dict.fromkeys(range(PARTS), 1)  # read by its one job only
        manager.detach()
        for dataset in (edges, table):
            dataset.unpersist(blocking=True)
    assert dead["off"][0] >= 1 and dead["off"][1] >= 1, dead  # the setting makes dead writes
    assert dead["use"] == (0, 0), dead


def test_generations_the_engine_sends_to_disk_are_put_on_disk_by_spark(sc, attach, bridge):
    """Per-iteration results larger than the budget and costly to recompute: once the engine
    sent a generation of the site to disk, the next ones are persisted DISK_ONLY, so Spark
    writes them at put time (no memory put for its LRU to make room for, no spill order that
    arrives late), each partition still computed once and read back from disk."""
    manager = _blaze_on_a_fast_disk(sc, attach, bridge, partitions_of_budget=0.5)
    runs, levels, placed, moved = [], [], [], []
    for _ in range(4):
        runs.append(counters(sc))
        generation = costly_dataset(sc, runs[-1], records=250).persist(blaze.BLAZE)
        levels.append(generation.getStorageLevel())  # before its used-up uses unpersist it
        assert generation.map(lambda kv: kv[0]).sum() == sum(range(1000))
        assert generation.count() == 1000
        manager.sync()
        explained = manager.explain(generation)
        placed.append("place_on_disk" in [e["action"] for e in explained["dataset"]])
        history = [e for p in explained["partitions"].values() for e in p["history"]]
        moved.append(sum(e["action"] in ("spill", "drop") for e in history))
    assert levels[0].useMemory  # nothing known yet: memory and disk, then the engine decides
    assert all(level == StorageLevel.DISK_ONLY for level in levels[1:]), levels
    # the generations put on disk: every partition computed once, then read from disk (the
    # first generation's first partitions are decided before the site's reads are known)
    for accumulators in runs[1:]:
        assert values(accumulators) == dict.fromkeys(range(PARTS), 1), values(accumulators)
    assert placed == [False, True, True, True]  # each said so in the decision log
    assert moved[0] > 0 and moved[1:] == [0, 0, 0], moved  # no order for a generation on disk
    report = manager.report()
    assert report["disk_hits"] >= 3 * PARTS and report["spark_evictions"] == 0, report


def test_a_partition_the_engine_placed_on_disk_is_read_from_disk_and_stays_there(
    sc, attach, bridge
):
    """Nothing fits the budget: the engine places each costly partition on disk. Later jobs
    read the disk copies; Spark does not cache them in memory again (which would evict by its
    own LRU and make the engine refuse the same promotion at every read)."""
    runs = counters(sc)
    manager = _blaze_on_a_fast_disk(sc, attach, bridge, partitions_of_budget=0.5)
    data = costly_dataset(sc, runs, records=250).persist(blaze.BLAZE)
    assert data.count() == 1000
    assert data.count() == 1000  # a partition dropped on a guess before R was known is back
    manager.sync()  # the placements carried out
    computed = values(runs)
    for _ in range(3):
        assert data.map(lambda kv: kv[0]).sum() == sum(range(1000))
    manager.sync()
    assert values(runs) == computed  # the later jobs read the disk copies, recomputed nothing
    history = [e for p in manager.explain(data)["partitions"].values() for e in p["history"]]
    actions = [e["action"] for e in history]
    assert actions.count("spill") >= PARTS, actions  # each placed on disk ...
    assert "keep_on_disk" not in actions and "promote" not in actions, actions  # ... for good
    report = manager.report()
    assert report["disk_hits"] >= 3 * PARTS and report["spark_evictions"] == 0, report
    assert all(mem == 0 and disk > 0 for mem, disk in _sizes(bridge, data.id()))
    # Spark caches a disk read in memory without telling its master: look in the store itself
    assert not any(bridge.in_memory_store(data.id(), split) for split in range(PARTS))


def _sizes(bridge, rdd_id):
    return [
        (b.memory_size, b.disk_size)
        for s in bridge.storage_status()
        for b in s.blocks
        if b.rdd_id == rdd_id
    ]
