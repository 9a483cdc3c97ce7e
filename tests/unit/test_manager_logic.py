"""The manager's pure parts: ledger accounting, usage tracking, policy adapter, profile, parsers."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blaze._jvm import (
    parse_block_statuses,
    parse_rdd_blocks,
    parse_storage_level,
)
from blaze.ledger import Ledger
from blaze.policies import Candidate, get_manager_policy
from blaze.tracker import UsageTracker
from blaze_errors import ConfigError, InputError
from costmodel.types import Location
from lineage.events import BlockEvent, RddNode, StageRun, StorageLevelInfo, TaskRun

MEM_DISK = StorageLevelInfo(use_disk=True, use_memory=True)
NONE = StorageLevelInfo()


def block(rdd, split, mem, disk=0, executor="driver", level=MEM_DISK):
    return BlockEvent(f"rdd_{rdd}_{split}", executor, level, mem, disk, None, rdd, split)


def stage(stage_id, *nodes):
    return StageRun(stage_id, 0, f"s{stage_id}", 4, tuple(nodes), ())


def node(rdd_id, parents=(), level=MEM_DISK):
    return RddNode(rdd_id, f"r{rdd_id}", "site", tuple(parents), 4, level)


def task(stage_id, partition, run_ms=10):
    return TaskRun(stage_id, 0, partition * 100 + stage_id, partition, "driver", 0, 1, run_ms)


# ---- ledger -------------------------------------------------------------------------------


def test_first_computation_is_a_miss_then_reads_are_hits():
    ledger = Ledger()
    ledger.apply_stage(stage(1, node(5)))
    ledger.apply_block(block(5, 0, 100))
    assert ledger.apply_task(task(1, 0)) == [((5, 0), "miss")]
    assert ledger.apply_task(task(1, 0)) == [((5, 0), "memory_hit")]
    report = ledger.report()
    assert (report["hits"], report["misses"], report["recomputed_partitions"]) == (1, 1, 0)


def test_dropped_partition_counts_as_recomputed_when_stored_again():
    ledger = Ledger()
    ledger.apply_stage(stage(1, node(5)))
    ledger.apply_block(block(5, 0, 100))
    ledger.apply_task(task(1, 0))
    ledger.mark_dropped((5, 0, "driver"))
    ledger.apply_block(block(5, 0, 0, level=NONE))  # the removal event, after the fact
    ledger.apply_block(block(5, 0, 120))  # recomputed and stored again
    assert ledger.apply_task(task(1, 0)) == [((5, 0), "miss")]
    assert ledger.report()["recomputed_partitions"] == 1


def test_spill_then_disk_read_with_promotion_counts_disk_traffic():
    ledger = Ledger()
    ledger.apply_stage(stage(1, node(5)))
    ledger.apply_block(block(5, 0, 100))
    ledger.apply_task(task(1, 0))
    ledger.mark_spilled((5, 0, "driver"))
    assert ledger.book.memory_used("driver") == 0
    ledger.apply_block(block(5, 0, 0, 90))  # the spill's event: 90 bytes on disk
    ledger.apply_block(block(5, 0, 100, 90))  # a read promoted it back to memory
    assert ledger.apply_task(task(1, 0)) == [((5, 0), "disk_hit")]
    report = ledger.report()
    assert report["disk_bytes_written"] == 90
    assert report["disk_bytes_read"] == 90
    assert report["recomputed_partitions"] == 0


def test_hit_on_a_child_shadows_its_persisted_parent():
    ledger = Ledger()
    ledger.apply_stage(stage(1, node(7, parents=(6,)), node(6, parents=(5,)), node(5)))
    ledger.apply_block(block(5, 0, 10))
    ledger.apply_block(block(7, 0, 10))
    ledger.apply_task(task(1, 0))
    assert ledger.apply_task(task(1, 0)) == [((7, 0), "memory_hit")]


def test_unexpected_removal_is_an_eviction_by_someone_else():
    ledger = Ledger()
    ledger.apply_block(block(5, 0, 100))
    ledger.apply_block(block(5, 0, 0, level=NONE))
    assert ledger.report()["evictions_by_reason"] == {"external_or_spark": 1}
    assert ledger.book.locate(5, 0) == []


def test_resync_drops_blocks_spark_no_longer_has_and_adds_unknown_ones():
    ledger = Ledger()
    ledger.apply_block(block(5, 0, 100))
    ledger.apply_block(block(5, 1, 100))
    corrections = ledger.resync([(5, 1, "driver", 100, 0), (6, 0, "exec-1", 50, 0)])
    assert corrections == 2
    assert ledger.book.locate(5, 0) == []
    assert ledger.book.memory_used("exec-1") == 50


def test_resync_leaves_blocks_with_an_order_on_its_way_as_the_book_has_them():
    """The book already shows a dropped and a spilled block where the orders put them;
    Spark's status still shows both in memory until the executor carries the orders out."""
    ledger = Ledger()
    for split in (0, 1, 2):
        ledger.apply_block(block(5, split, 100))
    ledger.mark_dropped((5, 0, "driver"))
    ledger.mark_spilled((5, 1, "driver"))
    truth = [(5, split, "driver", 100, 0) for split in (0, 1, 2)]
    ledger.resync(truth, keep={(5, 0, "driver"), (5, 1, "driver")})
    assert ledger.book.locate(5, 0) == []
    assert [(r.memory_size, r.disk_size) for r in ledger.book.locate(5, 1)] == [(0, 100)]
    assert ledger.book.memory_used("driver") == 100
    ledger.resync(truth)  # the orders never happened after all: Spark's view wins
    assert ledger.book.memory_used("driver") == 300


def test_events_for_unknown_stages_and_non_rdd_blocks_are_ignored():
    ledger = Ledger()
    assert ledger.apply_task(task(99, 0)) == []
    assert ledger.apply_block(BlockEvent("broadcast_1", "driver", MEM_DISK, 10, 0)) is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2),  # rdd
            st.integers(0, 3),  # split
            st.integers(0, 500),  # memory
            st.integers(0, 500),  # disk
            st.booleans(),  # valid
        ),
        max_size=60,
    )
)
def test_ledger_equals_the_last_event_per_block_in_any_order(events):
    """Whatever order and content, the book holds exactly the last valid state per block."""
    ledger = Ledger()
    last = {}
    for rdd, split, mem, disk, valid in events:
        ledger.apply_block(block(rdd, split, mem, disk, level=MEM_DISK if valid else NONE))
        last[(rdd, split)] = (mem, disk) if valid and (mem or disk) else None
    for (rdd, split), state in last.items():
        records = ledger.book.locate(rdd, split)
        if state is None:
            assert records == []
        else:
            assert [(r.memory_size, r.disk_size) for r in records] == [state]
    assert ledger.book.memory_used("driver") == sum(s[0] for s in last.values() if s)


# ---- usage tracker: autoCache and auto-unpersist -------------------------------------------


def test_reused_dataset_is_chosen_on_its_second_job_but_not_its_ancestor():
    tracker = UsageTracker()
    base = tracker.register(1, "app.py:3").token
    data = tracker.register(2, "app.py:4").token
    parents = {data: [base]}
    assert tracker.start_job([base, data, tracker.register(3, "app.py:9").token], parents) == []
    tracker.finish_job()
    assert tracker.start_job([base, data, tracker.register(4, "app.py:9").token], parents) == [data]


def test_ancestor_read_again_only_through_a_cached_descendant_is_not_a_reused_site():
    tracker = UsageTracker()
    shuffled = tracker.register(1, "pagerank.py:56").token
    ranks = tracker.register(2, "cache.py:9 < pagerank.py:56").token
    tracker.mark_persisted(ranks, managed=True)
    parents = {ranks: [shuffled]}
    assert tracker.start_job([shuffled, ranks], parents) == []
    tracker.finish_job()
    # ranks lost partitions, so the next job reads its ancestor again on the way to it
    assert tracker.start_job([shuffled, ranks], parents) == []
    tracker.finish_job()
    assert not tracker.is_reused_site("pagerank.py:56")
    assert tracker.is_reused_site("cache.py:9 < pagerank.py:56")


def test_profile_site_matches_by_innermost_line_when_called_from_elsewhere():
    profiled = "job.py:12 < main.py:40"
    tracker = UsageTracker(profile_uses={profiled: 4}, profile_reused=[profiled])
    assert tracker.is_reused_site("job.py:12 < main.py:77")
    assert tracker.expected_uses("job.py:12 < other.py:3") == 4
    assert not tracker.is_reused_site("job.py:13 < main.py:40")


def test_a_dataset_read_only_through_a_fully_cached_descendant_has_uses_but_no_reads():
    """kmeans: records -> features, both cached. Every job's lineage holds the records (a
    use: they stay while a lost partition of the features may need them), but once the
    features are wholly cached only the first job read the records: F of later jobs is 0."""
    tracker = UsageTracker()
    records = tracker.register(1, "kmeans.py:60").token
    features = tracker.register(2, "kmeans.py:61", prev=records).token
    for token in (records, features):
        tracker.mark_persisted(token, managed=True)
    parents = {features: [records]}
    tracker.start_job([records, features], parents)  # computes both
    tracker.finish_job()
    for _ in range(3):  # the features' every partition is cached now
        tracker.start_job([records, features], parents, from_cache=[features])
        tracker.finish_job()
    assert [tracker.datasets[t].uses for t in (records, features)] == [4, 4]
    assert [tracker.datasets[t].reads for t in (records, features)] == [1, 4]
    for token in (records, features):
        tracker.forget(token)  # retired: what the next run's profile predicts
    profile = tracker.profile()
    assert [profile[s]["uses"] for s in ("kmeans.py:60", "kmeans.py:61")] == [4, 4]
    assert [profile[s]["reads"] for s in ("kmeans.py:60", "kmeans.py:61")] == [1, 4]

    sites = {site: facts["uses"] for site, facts in profile.items()}
    reads = {site: facts["reads"] for site, facts in profile.items()}
    again = UsageTracker(profile_uses=sites, profile_reads=reads)
    records = again.register(1, "kmeans.py:60").token
    features = again.register(2, "kmeans.py:61", prev=records).token
    again.start_job([records, features], {features: [records]})
    assert again.future_reads(records) == 0.0 and again.future_reads(features) == 3.0
    assert again.future_uses(records) == 3.0  # kept alive for the lineage that holds it


def test_new_generation_of_a_reused_site_is_cached_before_its_first_job():
    tracker = UsageTracker()
    first = tracker.register(1, "loop.py:7").token
    tracker.start_job([first])
    tracker.finish_job()
    tracker.start_job([first])  # reused: the site is now known to be reused
    tracker.finish_job()
    second = tracker.register(2, "loop.py:7").token
    assert tracker.start_job([second]) == [second]


def test_superseded_generation_is_unpersisted_and_teaches_the_expected_uses():
    tracker = UsageTracker()
    gens = [tracker.register(t, "ranks.py:10").token for t in (1, 2, 3)]
    for token in gens:
        tracker.mark_persisted(token, managed=True)
    tracker.start_job([gens[0]])
    assert tracker.finish_job() == []
    tracker.start_job([gens[0], gens[1]])  # iteration 1 reads ranks_0 and computes ranks_1
    assert tracker.finish_job() == []
    tracker.start_job([gens[1], gens[2]])  # ranks_0 is no longer read: retired
    # ranks_0 retires after 2 uses; ranks_1 has had 2 uses as well: no future use predicted
    assert tracker.finish_job() == [gens[0], gens[1]]
    assert tracker.expected_uses("ranks.py:10") == 2
    assert tracker.future_uses(gens[1]) == 0.0
    assert tracker.future_uses(gens[2]) == 1.0


def test_an_ancestor_the_job_also_reads_by_another_path_is_chosen_with_its_descendant():
    """``ranks = links.mapValues(...)``; each job reads ``ranks`` and, through a join,
    ``links`` itself: caching ``ranks`` does not spare ``links``, while the shuffled pairs
    under ``links``, read only through it, are spared."""
    tracker = UsageTracker()
    pairs = tracker.register(1, "graph.py:42:40").token
    links = tracker.register(2, "graph.py:42:90", prev=pairs).token
    ranks = tracker.register(3, "pagerank.py:59", prev=links).token
    for job in range(2):
        side = tracker.register(10 + job, "pagerank.py:65#2", prev=links).token
        result = tracker.register(20 + job, "pagerank.py:66").token
        parents = {links: [pairs], ranks: [links], side: [links], result: [side, ranks]}
        chosen = tracker.start_job([pairs, links, ranks, side, result], parents)
        tracker.finish_job()
    assert chosen == [links, ranks]


def test_generations_read_while_autocache_was_learning_do_not_delay_the_later_ones():
    """autoCache alone on a ``ranks = f(ranks)`` loop: ranks_1 is cached only when a second
    job reads it, ranks_2 not at all (derived before the site was known to be reused), so
    ranks_1 is read a third time through it. Once a generation cached from its first job has
    retired, each generation goes right after the job that read it last, not a job later."""
    tracker = UsageTracker()
    site = "pagerank.py:66"
    gens = [tracker.register(t, site).token for t in range(1, 9)]
    parents = {gens[i]: [gens[i - 1]] for i in range(1, len(gens))}

    def job(*tokens):
        chosen = tracker.start_job(list(tokens), parents)
        for token in chosen:
            tracker.mark_persisted(token, managed=True)
        return tracker.finish_job()

    assert job(gens[0]) == []
    assert job(gens[0], gens[1]) == []  # ranks_1 read by a second job: autoCache
    assert tracker.datasets[gens[0]].persisted and not tracker.datasets[gens[1]].persisted
    tracker.mark_persisted(gens[2], managed=True)  # cached at derivation from here on
    assert job(gens[0], gens[1], gens[2]) == []  # ranks_1 read through uncached ranks_2
    retired = []
    for k in range(3, len(gens)):
        tracker.mark_persisted(gens[k], managed=True)
        retired.append(job(gens[k - 1], gens[k]))
    # ranks_1 (three uses) and ranks_3 each go one job late while nothing steady is known;
    # ranks_3 teaches two uses, and from then on the generation just read goes with its job
    assert retired[0] == [gens[0]]
    assert retired[1] == [gens[2], gens[3]]
    assert retired[2:] == [[gens[k - 1]] for k in range(5, len(gens))]
    assert tracker.expected_uses(site) == 2


def test_newest_state_generation_outlives_its_predicted_uses_until_superseded():
    tracker = UsageTracker()
    site = "cache.py:9 < svdpp.py:141"
    gens = [tracker.register(t, site).token for t in (1, 2, 3)]
    handles = [tracker.register(t, "cache.py:11 < svdpp.py:141").token for t in (11, 12)]
    for token in gens:
        tracker.mark_persisted(token, managed=True)
    tracker.start_job([gens[0]])
    assert tracker.finish_job() == []
    assert not tracker.is_state_site(site)
    # each iteration derives the new state from the previous one (through a handle) and reads
    # it; the previous state is read on the way
    tracker.start_job(
        [gens[0], handles[0], gens[1]], {gens[1]: [handles[0]], handles[0]: [gens[0]]}
    )
    assert tracker.finish_job() == []
    assert tracker.is_state_site(site)  # never declined (blaze.persistence)
    assert not tracker.is_state_site("cache.py:11 < svdpp.py:141")
    tracker.start_job(
        [gens[1], handles[1], gens[2]], {gens[2]: [handles[1]], handles[1]: [gens[1]]}
    )
    # state_0 superseded; state_1 used twice (the learnt count) with state_2 holding the state
    assert tracker.finish_job() == [gens[0], gens[1]]
    assert tracker.expected_uses(site) == 2
    # after the loop the program reads the final state: it stays past the learnt count
    tracker.start_job([gens[2]])
    assert tracker.finish_job() == []
    assert tracker.future_uses(gens[2]) == 1.0
    tracker.start_job([gens[2]])
    assert tracker.finish_job() == []


def test_dataframe_state_seen_only_through_the_listener_keeps_its_newest_generation():
    """A program of DataFrame jobs alone: no RDD job ever starts, reads arrive afterwards."""
    tracker = UsageTracker()
    site = "frames.py:12"
    gens = [tracker.register(t, site).token for t in range(4)]
    for token in gens:
        tracker.mark_persisted(token, managed=True)
    assert tracker.record_reads([gens[0]]) == []  # the job computing generation 0
    superseded = []
    for older, newer in pairwise(gens):  # computing a generation reads the one before
        superseded += tracker.record_reads([newer, older], parents={newer: [older]})
    # each older generation goes once read by the job computing its successor's successor
    assert superseded == gens[:3]
    assert tracker.is_state_site(site)
    # the program reads the final state after the loop, more often than any generation was
    assert tracker.record_reads([gens[3]]) == []
    assert tracker.record_reads([gens[3]]) == []
    assert tracker.future_uses(gens[3]) > 0


def test_per_iteration_dataset_of_other_data_is_unpersisted_once_its_uses_are_done():
    tracker = UsageTracker()
    points = tracker.register(1, "lr.py:64").token
    scored = [tracker.register(t, "cache.py:9 < lr.py:70").token for t in (2, 3)]
    for token in scored:
        tracker.mark_persisted(token, managed=True)
    for token in scored:
        tracker.start_job([points, token], {token: [points]})  # the loss
        tracker.finish_job()
        tracker.start_job([token])  # the gradient
        done = tracker.finish_job()
    # scored_0 was retired when scored_1 was first read; scored_1 reached its site's two uses
    assert done == [scored[1]]
    assert tracker.future_uses(scored[1]) == 0.0


def test_a_dataset_every_job_reads_is_predicted_as_many_more_reads_as_its_run_so_far():
    """Nothing learnt of its site (one generation, as a loop's input): the later reads are the
    run of consecutive jobs that read it, at least 1; a job that does not read it ends the run,
    and each job more without a read makes another read less likely (1 / (idle jobs + 1))."""
    tracker = UsageTracker()
    links = tracker.register(1, "pagerank.py:40").token
    other = tracker.register(2, "pagerank.py:41").token
    tracker.mark_persisted(links, managed=True)
    assert tracker.future_uses(links) == 1.0  # never read yet
    for jobs in range(1, 5):
        tracker.start_job([links])
        tracker.finish_job()
        assert tracker.future_uses(links) == float(jobs)
    tracker.start_job([other])  # this job does not read it: the run is over
    assert tracker.future_uses(links) == 0.5
    tracker.finish_job()
    tracker.start_job([other])  # two jobs without a read: a third as likely as once more
    assert tracker.future_uses(links) == pytest.approx(1 / 3)
    tracker.finish_job()
    tracker.start_job([links])  # read again: a new run
    assert tracker.future_uses(links) == 1.0
    tracker.finish_job()
    tracker.start_job([links])
    assert tracker.future_uses(links) == 2.0


def test_profile_uses_predict_future_references():
    tracker = UsageTracker(profile_uses={"a.py:1": 3})
    token = tracker.register(1, "a.py:1").token
    tracker.mark_persisted(token, managed=True)
    assert tracker.future_uses(token) == 3.0
    tracker.start_job([token])
    tracker.finish_job()
    assert tracker.future_uses(token) == 2.0
    tracker.start_job([token])
    tracker.finish_job()
    tracker.start_job([token])
    assert tracker.finish_job() == [token]


def test_a_profiled_loop_input_stays_while_every_job_reads_it_past_its_count():
    """A loop run until it converges ran 3 iterations on the profile's sample and runs 4
    here: the input's profiled count is short by one. At the count the profile still holds
    (no later read), but the input stays; read once more, its later uses are predicted as
    with no profile (the run so far); the first job that does not read it ends it."""
    tracker = UsageTracker(profile_uses={"graph.py:42": 3}, profile_loop_inputs=["graph.py:42"])
    graph = tracker.register(1, "graph.py:42").token
    other = tracker.register(2, "cc.py:80").token
    tracker.mark_persisted(graph, managed=True)
    for job in range(3):
        tracker.start_job([graph])
        assert tracker.future_uses(graph) == 2.0 - job
        assert tracker.finish_job() == []
    tracker.start_job([graph])  # the 4th iteration: the count is proven short
    assert tracker.future_uses(graph) == 4.0
    assert tracker.future_reads(graph) == 4.0
    assert tracker.finish_job() == []
    tracker.start_job([other])  # the loop ended
    assert tracker.finish_job() == [graph]


@pytest.mark.parametrize("loop_input", [False, True])
def test_a_profiled_count_is_exact_for_other_datasets_and_for_inputs_not_read_by_every_job(
    loop_input,
):
    """Only a profiled loop input read by each job so far outlives its count: a site with
    several generations (or not profiled as one dataset), or an input some jobs skipped, is
    unpersisted when it reaches the count, as before."""
    tracker = UsageTracker(
        profile_uses={"a.py:1": 2}, profile_loop_inputs=["a.py:1"] if loop_input else []
    )
    token = tracker.register(1, "a.py:1").token
    other = tracker.register(2, "b.py:1").token
    tracker.mark_persisted(token, managed=True)
    for used in ([token], [other], [token]) if loop_input else ([token], [token]):
        tracker.start_job(used)
        done = tracker.finish_job()
    assert done == [token]


def test_a_profile_carries_the_uses_of_the_retired_generations_not_the_most_any_had():
    """Each generation of a loop's state is read twice; the last one once more (the program's
    result). The profile says 2: the run that uses it predicts that count for every
    generation (with 3, each would be kept, or written to disk, for a read that never came)."""
    tracker = UsageTracker()
    prev = None
    for generation in range(4):
        token = tracker.register(generation + 1, "loop.py:7", prev).token
        tracker.mark_persisted(token, managed=True)
        for _ in range(3 if generation == 3 else 2):
            tracker.start_job([token])
            tracker.finish_job()
        if prev is not None:
            tracker.mark_unpersisted(prev)
        prev = token
    assert tracker.profile()["loop.py:7"]["uses"] == 2
    once = UsageTracker()  # no generation retired: the most uses a live one has
    token = once.register(1, "edges.py:3").token
    once.mark_persisted(token, managed=True)
    once.start_job([token])
    once.finish_job()
    assert once.profile()["edges.py:3"]["uses"] == 1


def test_unmanaged_datasets_are_never_unpersisted():
    tracker = UsageTracker(profile_uses={"a.py:1": 1})
    token = tracker.register(1, "a.py:1").token
    tracker.mark_persisted(token, managed=False)
    tracker.start_job([token])
    assert tracker.finish_job() == []


# ---- policy adapter -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mem_only", "mem_disk", "lrc", "mrd", "blaze"])
def test_fitting_partition_is_admitted_to_memory(name):
    policy = get_manager_policy(name)
    incoming = Candidate((1, 0), 100, future_refs=2, recompute_ms=50, write_ms=1, read_ms=1)
    decision = policy.admit(incoming, [Candidate((2, 0), 100)], 1000)
    assert decision.admit_to == Location.MEMORY
    assert decision.victims == ()


@settings(max_examples=80, deadline=None)
@given(
    name=st.sampled_from(["mem_only", "mem_disk", "lrc", "mrd", "blaze"]),
    sizes=st.lists(st.integers(1, 400), min_size=1, max_size=12),
    incoming_size=st.integers(1, 400),
    budget=st.integers(1, 2000),
    refs=st.lists(st.integers(0, 3), min_size=13, max_size=13),
)
def test_after_a_decision_memory_fits_the_budget(name, sizes, incoming_size, budget, refs):
    """Residents that stay plus the incoming one (if admitted) never exceed the budget."""
    policy = get_manager_policy(name)
    resident, used = [], 0
    for i, size in enumerate(sizes):
        if used + size > budget:
            break
        used += size
        resident.append(
            Candidate((i + 2, 0), size, last_access=i, future_refs=refs[i], recompute_ms=size)
        )
    incoming = Candidate(
        (1, 0), incoming_size, last_access=99, future_refs=refs[-1], recompute_ms=50
    )
    decision = policy.admit(incoming, resident, budget)
    freed = {key for key, _ in decision.victims}
    kept = sum(c.size for c in resident if c.key not in freed)
    if decision.admit_to == Location.MEMORY:
        kept += incoming_size
    assert kept <= budget
    if not policy.spills:
        assert all(where == Location.NONE for _, where in decision.victims)


def test_unknown_policy_is_one_clear_error():
    with pytest.raises(ConfigError, match="unknown cache policy 'fastest'"):
        get_manager_policy("fastest")


@pytest.mark.parametrize(
    ("name", "acts", "caches", "level"),
    [
        ("spark", False, True, "MEMORY_ONLY"),
        ("none", False, False, "MEMORY_ONLY"),
        ("mem_only", True, True, "MEMORY_ONLY"),
        ("mem_disk", True, True, "MEMORY_AND_DISK"),
        ("blaze", True, True, "MEMORY_AND_DISK"),
    ],
)
def test_policy_roles(name, acts, caches, level):
    policy = get_manager_policy(name)
    assert (policy.acts, policy.caches, policy.jvm_level_name()) == (acts, caches, level)


# ---- profile ---------------------------------------------------------------------------------


def test_profile_round_trip_keeps_sites_and_refuses_others(tmp_path):
    from costmodel.cost import CostModel
    from costmodel.disk import DiskCost
    from costmodel.profile import ProfileError, load, record
    from costmodel.types import RddSpec

    model = CostModel([RddSpec(3, stages=frozenset({0}))], disk=DiskCost(1.0, 1.0))
    model.observe((3, 0), 1024.0, 12.0)
    sites = {"pr.py:9": {"uses": 2, "reused": True, "cached": True}}
    path = record(tmp_path / "p.json", model, app_name="pagerank", sites=sites)
    profile = load(path, app_name="pagerank")
    assert profile.sites == sites
    assert profile.metrics[(3, 0)].compute_ms == 12.0
    with pytest.raises(ProfileError, match="belongs to application 'pagerank', not 'kmeans'"):
        load(path, app_name="kmeans")
    body = json.loads(path.read_text())
    body["format_version"] = 99
    path.write_text(json.dumps(body))
    with pytest.raises(InputError, match="format version 99"):
        load(path, app_name="pagerank")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(InputError, match="is not JSON"):
        load(tmp_path / "junk.json")
    with pytest.raises(InputError, match="profile not found"):
        load(tmp_path / "missing.json")


# ---- py4j string parsers ------------------------------------------------------------------------


def test_parse_storage_levels():
    assert parse_storage_level("StorageLevel(disk, memory, deserialized, 1 replicas)") == (
        StorageLevelInfo(use_disk=True, use_memory=True, deserialized=True)
    )
    assert not parse_storage_level("StorageLevel(1 replicas)").is_valid


def test_parse_block_maps():
    text = (
        "Map(BlockManagerId(driver, 127.0.0.1, 42057, None) -> "
        "BlockStatus(StorageLevel(disk, memory, 1 replicas),27743,0))"
    )
    [status] = parse_block_statuses(text, 1, 2)
    assert (status.executor_id, status.memory_size, status.disk_size) == ("driver", 27743, 0)
    blocks = parse_rdd_blocks(
        "HashMap(rdd_4_2 -> BlockStatus(StorageLevel(memory, deserialized, 1 replicas),912,0), "
        "rdd_4_3 -> BlockStatus(StorageLevel(disk, 1 replicas),0,800))",
        "1",
    )
    assert [(b.rdd_id, b.split_index, b.memory_size, b.disk_size) for b in blocks] == [
        (4, 2, 912, 0),
        (4, 3, 0, 800),
    ]


def test_the_report_of_a_managers_own_spill_is_not_a_promotion():
    """Spark posts the spill's block update with the dropped memory size still filled in."""
    ledger = Ledger()
    ledger.apply_block(block(5, 0, 100))
    ledger.mark_spilled((5, 0, "driver"))
    change = ledger.apply_block(block(5, 0, 100, 95))
    assert not change.entered_memory
    assert ledger.book.memory_used("driver") == 0
    assert ledger.report()["disk_bytes_written"] == 95


def test_sparks_own_drop_to_disk_leaves_no_memory_copy_though_its_report_names_one():
    """Spark's LRU drops a block to disk and reports it with the level's memory flag off but
    the dropped size in its memory field (``reportBlockStatus`` sends the larger): the
    book holds the disk copy only, the memory left, and the next read is a disk hit."""
    ledger = Ledger()
    ledger.apply_stage(stage(1, node(5)))
    ledger.apply_block(block(5, 0, 100))
    ledger.apply_task(task(1, 0))
    dropped = StorageLevelInfo(use_disk=True)
    change = ledger.apply_block(block(5, 0, 100, 100, level=dropped))
    assert change.left_memory and not change.removed
    assert ledger.book.memory_used("driver") == 0
    assert ledger.book.blocks[(5, 0, "driver")].disk_size == 100
    assert ledger.apply_task(task(1, 0)) == [((5, 0), "disk_hit")]
    assert ledger.report()["disk_bytes_written"] == 100


def test_a_prefetch_made_before_its_spills_report_came_is_a_memory_copy_and_a_memory_hit():
    """MRD spills a block and reads it back before the spill's report reaches the listener:
    that late report confirms the disk copy and keeps the prefetched memory copy, and the
    prefetch's own report after it is not a read promoting the block — the next read is a
    memory hit (the disk read was the prefetch's, counted once)."""
    ledger = Ledger()
    ledger.apply_stage(stage(1, node(5)))
    ledger.apply_block(block(5, 0, 100))
    ledger.apply_task(task(1, 0))
    slot = (5, 0, "driver")
    ledger.mark_spilled(slot)
    ledger.note_prefetch(slot, 100)
    change = ledger.apply_block(block(5, 0, 100, 100, level=StorageLevelInfo(use_disk=True)))
    assert not change.left_memory and ledger.book.memory_used("driver") == 100
    memory_only = StorageLevelInfo(use_memory=True)
    assert not ledger.apply_block(block(5, 0, 100, 0, level=memory_only)).entered_memory
    assert ledger.apply_task(task(1, 0)) == [((5, 0), "memory_hit")]
    assert ledger.report()["disk_bytes_read"] == 100
    assert ledger.report()["evictions_by_reason"].get("spark_spill", 0) == 0


def _named(rdd_id, name, parents, partitions, level=NONE):
    return RddNode(rdd_id, name, "site", tuple(parents), partitions, level)


def test_reads_of_a_cached_rdd_inside_a_union_stage_are_hits():
    # PySpark's join of cached rdd 5 (4 partitions) with rdd 6 (2 partitions): union 8
    ledger = Ledger()
    union = StageRun(
        1, 0, "join", 6,
        (_named(8, "UnionRDD", (7, 6), 6), _named(7, "PythonRDD", (5,), 4),
         _named(5, "PythonRDD", (), 4, MEM_DISK), _named(6, "PythonRDD", (), 2)),
        (), final_rdd_id=8,
    )  # fmt: skip
    ledger.apply_stage(union)
    for split in range(4):
        ledger.apply_block(block(5, split, 100))
    outcomes = [ledger.apply_task(task(1, p)) for p in range(6)]
    assert outcomes[:4] == [[((5, p), "miss")] for p in range(4)]
    assert outcomes[4:] == [[], []]  # the other side of the union reads nothing cached
    assert [ledger.apply_task(task(1, p)) for p in range(4)] == [
        [((5, p), "memory_hit")] for p in range(4)
    ]
    assert ledger.report()["hits"] == 4


def test_co_partitioned_union_reads_the_same_index_of_each_parent():
    ledger = Ledger()
    graph = (
        _named(9, "PartitionerAwareUnionRDD", (5, 6), 4),
        _named(5, "PythonRDD", (), 4, MEM_DISK), _named(6, "PythonRDD", (), 4, MEM_DISK),
    )  # fmt: skip
    ledger.apply_stage(StageRun(2, 0, "join", 4, graph, (), final_rdd_id=9))
    for rdd in (5, 6):
        ledger.apply_block(block(rdd, 3, 10))
    ledger.apply_task(task(2, 3))
    assert ledger.apply_task(task(2, 3)) == [((5, 3), "memory_hit"), ((6, 3), "memory_hit")]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=5))
def test_a_union_partition_maps_to_exactly_one_parent_partition(sizes):
    from blaze.partition_map import StageGraph, parent_partitions

    parents = [_named(10 + i, "PythonRDD", (), n) for i, n in enumerate(sizes)]
    top = _named(99, "UnionRDD", [p.rdd_id for p in parents], sum(sizes))
    graph = StageGraph.of(StageRun(1, 0, "u", sum(sizes), (top, *parents), (), final_rdd_id=99))
    mapped = [parent_partitions(graph.nodes[99], i, graph.nodes) for i in range(sum(sizes))]
    assert all(len(m) == 1 for m in mapped)
    assert sorted(m[0] for m in mapped) == sorted(
        (p.rdd_id, s) for p in parents for s in range(p.num_partitions)
    )


@pytest.mark.parametrize("kind", ["ShuffledRDD", "CoalescedRDD", "CoGroupedRDD"])
def test_the_walk_stops_where_spark_reads_no_parent_block_by_index(kind):
    # rdd 5 is persisted and has as many partitions as the stage, but partition i of the
    # shuffle/coalesce above it does not read partition i of it: nothing is counted
    ledger = Ledger()
    nodes = (_named(8, kind, (5,), 4), _named(5, "PythonRDD", (), 4, MEM_DISK))
    ledger.apply_stage(StageRun(1, 0, "s", 4, nodes, (), final_rdd_id=8))
    ledger.apply_block(block(5, 0, 10))
    assert ledger.apply_task(task(1, 0)) == []
    assert ledger.report()["hits"] == 0


def test_a_cartesian_partition_reads_one_partition_of_each_side():
    ledger = Ledger()
    nodes = (
        _named(9, "CartesianRDD", (5, 6), 6),
        _named(5, "PythonRDD", (), 2, MEM_DISK), _named(6, "PythonRDD", (), 3, MEM_DISK),
    )  # fmt: skip
    ledger.apply_stage(StageRun(1, 0, "s", 6, nodes, (), final_rdd_id=9))
    assert [k for k, _ in ledger.apply_task(task(1, 4))] == [(5, 1), (6, 1)]


def test_later_reads_are_the_remaining_uses_times_the_stages_a_use_reads_with():
    """A PageRank ``ranks`` generation is read by two stages of the next iteration (the join
    and the update): once a job was planned so, each predicted use is worth two reads."""
    tracker = UsageTracker()
    token = tracker.register(1, "pagerank.py:66").token
    tracker.mark_persisted(token, managed=True)
    assert tracker.future_reads(token) == tracker.future_uses(token) == 1.0
    tracker.note_reads("pagerank.py:66", 2)
    tracker.note_reads("pagerank.py:66", 1)  # a job reading it once does not lower it
    assert tracker.future_reads(token) == 2.0
    later = tracker.register(2, "pagerank.py:66").token  # the site's next generation too
    tracker.mark_persisted(later, managed=True)
    assert tracker.future_reads(later) == 2 * tracker.future_uses(later) == 2.0
    other = tracker.register(3, "pagerank.py:40").token  # another site: its own count
    assert tracker.future_reads(other) == 1.0
