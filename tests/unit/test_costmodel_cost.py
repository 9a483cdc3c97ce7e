"""The cost function on hand-made DAGs with answers worked out by hand (no JVM)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel import CostModel, DiskCost, Estimate, Location, PartitionMetrics, RddSpec

MIB = 1 << 20
DISK = DiskCost(write_ms_per_mib=2.0, read_ms_per_mib=1.0)


def chain_model(**kwargs) -> CostModel:
    """0 -> 1 -> 2 -> 3 computed in stage 0 (done); 3 is read by stages 1 and 2 (pending)."""
    rdds = [
        RddSpec(0, (), stages=frozenset({0})),
        RddSpec(1, (0,), stages=frozenset({0})),
        RddSpec(2, (1,), stages=frozenset({0})),
        RddSpec(3, (2,), stages=frozenset({0})),
        RddSpec(4, (3,), stages=frozenset({1})),
        RddSpec(5, (3,), stages=frozenset({2})),
    ]
    metrics = {
        (0, 0): PartitionMetrics(1 * MIB, 10),
        (1, 0): PartitionMetrics(1 * MIB, 20),
        (2, 0): PartitionMetrics(1 * MIB, 30),
        (3, 0): PartitionMetrics(3 * MIB, 40),
    }
    return CostModel(rdds, metrics, DISK, completed_stages=[0], **kwargs)


class TestChain:
    def test_future_references_are_pending_child_stages(self):
        model = chain_model()
        assert model.reference_stages((3, 0)) == {1, 2}
        assert model.future_refs((3, 0)) == 2

    def test_references_pass_through_uncached_completed_children(self):
        # 1 -> 2 -> 3 were computed in the finished stage 0; stages 1 and 2 recompute them
        assert chain_model().future_refs((1, 0)) == 2

    def test_a_stored_child_ends_the_reference_walk(self):
        model = chain_model()
        model.set_location((3, 0), Location.MEMORY)
        assert model.future_refs((1, 0)) == 0
        assert model.future_refs((1, 1)) == 2  # another split: its child is not stored

    def test_a_partition_persisted_without_disk_falls_back_to_recomputation(self):
        # 2 x (40+30+20+10) ms to recompute twice vs 6 + 2 x 3 ms to write and read: disk,
        # unless the RDD is persisted in memory only
        assert chain_model().cost((3, 0)).fallback() == Location.DISK
        model = chain_model(memory_only={3})
        cost = model.cost((3, 0))
        assert (cost.write_ms, cost.fallback(), cost.cost) == (float("inf"), Location.NONE, 200)
        assert model.write_ms((3, 0)) == float("inf")
        assert model.cost((2, 0)).write_ms == 2.0  # the others keep their disk

    def test_recompute_time_sums_the_whole_lineage(self):
        assert chain_model().recompute_ms((3, 0)) == 40 + 30 + 20 + 10

    def test_recompute_stops_at_a_parent_in_memory(self):
        model = chain_model()
        model.set_location((1, 0), Location.MEMORY)
        assert model.recompute_ms((3, 0)) == 40 + 30

    def test_recompute_adds_the_disk_read_of_a_parent_on_disk(self):
        model = chain_model()
        model.set_location((1, 0), Location.DISK)
        assert model.recompute_ms((3, 0)) == 40 + 30 + 1 * 1.0

    def test_cost_terms(self):
        cost = chain_model().cost((3, 0))
        assert (cost.future_refs, cost.recompute_ms) == (2, 100)
        assert (cost.write_ms, cost.read_ms) == (6.0, 3.0)
        assert cost.comp_cost == 100 * 2
        assert cost.disk_cost == 6.0 + 3.0 * 2
        assert cost.cost == 12.0

    def test_cost_of_a_partition_already_on_disk(self):
        model = chain_model()
        model.set_location((3, 0), Location.DISK)
        cost = model.cost((3, 0))
        assert cost.on_disk
        assert cost.comp_cost == 3.0 * 2  # Rd x F
        assert cost.disk_cost == 0 + 3.0 * 2  # no write: it is already there

    def test_no_future_reference_costs_nothing(self):
        model = chain_model()
        model.complete_stage(1)
        model.complete_stage(2)
        cost = model.cost((3, 0))
        assert cost.future_refs == 0 and cost.cost == 0
        assert cost.fallback() == Location.NONE

    def test_missing_metrics_fall_back_to_rdd_mean_then_estimator(self):
        model = chain_model(estimator=lambda spec, split: Estimate(7 * MIB, 9.0))
        model.observe((3, 1), 5 * MIB, 60)
        assert model.size_bytes((3, 2)) == (3 * MIB + 5 * MIB) / 2
        assert model.compute_ms((4, 0)) == 9.0  # nothing measured for rdd 4: predicted
        assert model.size_bytes((4, 0)) == 7 * MIB

    def test_mean_fallback_is_refreshed_when_a_new_measurement_arrives(self):
        model = chain_model()
        before = model.recompute_ms((3, 5))  # split 5: every term from RDD means
        model.observe((2, 1), 1 * MIB, 90)  # rdd 2's mean compute time 30 -> 60
        assert model.recompute_ms((3, 5)) == before + 30


def diamond_model() -> CostModel:
    """0 -> {1, 2} -> 3; 1 is read in stage 1, 2 in stage 2, 3 in stage 3 (all pending)."""
    rdds = [
        RddSpec(0, (), stages=frozenset({0})),
        RddSpec(1, (0,), stages=frozenset({1})),
        RddSpec(2, (0,), stages=frozenset({2})),
        RddSpec(3, (1, 2), stages=frozenset({3})),
    ]
    metrics = {
        (0, 0): PartitionMetrics(MIB, 5),
        (1, 0): PartitionMetrics(MIB, 7),
        (2, 0): PartitionMetrics(MIB, 11),
        (3, 0): PartitionMetrics(MIB, 13),
    }
    return CostModel(rdds, metrics, DISK, completed_stages=[0])


class TestDiamond:
    def test_shared_ancestor_is_recomputed_once(self):
        assert diamond_model().recompute_ms((3, 0)) == 13 + 7 + 11 + 5

    def test_both_branches_reference_the_root(self):
        # 0 is reused (out-degree 2) and read by stages 1 and 2, and through them by 3
        assert diamond_model().reference_stages((0, 0)) == {1, 2, 3}

    def test_a_cached_branch_still_counts_its_own_stage(self):
        model = diamond_model()
        model.add_rdd(RddSpec(1, (0,), stages=frozenset({1}), cached=True))
        # 1 will be cached: stage 3 reads 1 from the cache, but still reaches 0 through 2
        assert model.reference_stages((0, 0)) == {1, 2, 3}
        model.set_location((2, 0), Location.MEMORY)
        assert model.reference_stages((0, 0)) == {1}

    def test_reused_rdds_are_the_auto_cache_candidates(self):
        assert diamond_model().reused_rdds() == [0]


def shuffle_model() -> CostModel:
    """0 -> 1 | shuffle | 2 (ShuffledRDD) -> 3; stage 0 maps, stage 1 reduces."""
    rdds = [
        RddSpec(0, (), stages=frozenset({0})),
        RddSpec(1, (0,), stages=frozenset({0})),
        RddSpec(2, (1,), stages=frozenset({1}), shuffled=True),
        RddSpec(3, (2,), stages=frozenset({1})),
        RddSpec(4, (3,), stages=frozenset({2})),
    ]
    metrics = {
        (0, 0): PartitionMetrics(MIB, 100),
        (1, 0): PartitionMetrics(MIB, 200),
        (2, 0): PartitionMetrics(4 * MIB, 8),
        (3, 0): PartitionMetrics(2 * MIB, 6),
    }
    return CostModel(rdds, metrics, DISK, completed_stages=[0, 1])


class TestShuffleBoundary:
    def test_recompute_stops_at_the_shuffle_and_pays_its_read(self):
        # 3's own time + the shuffled partition rebuilt from shuffle files (8 ms + 4 MiB read)
        assert shuffle_model().recompute_ms((3, 0)) == 6 + 8 + 4 * 1.0

    def test_the_shuffle_output_itself(self):
        assert shuffle_model().recompute_ms((2, 0)) == 8 + 4.0

    def test_references_do_not_cross_the_shuffle(self):
        model = shuffle_model()
        assert model.future_refs((3, 0)) == 1
        assert model.future_refs((1, 0)) == 0  # stage 2 reads shuffle files, not 1


def loop_model(iterations: int, growth: float = 1.5) -> CostModel:
    """PageRank-like: links (rdd 0, job 0) joined with ranks_i (rdd 10+i, job i, stage i).

    ranks_i grows by ``growth`` per iteration, so later partitions are bigger and cost more
    to write and read.
    """
    rdds = [RddSpec(0, (), stages=frozenset({0}), job_id=0, call_site="links", cached=True)]
    metrics = {(0, 0): PartitionMetrics(8 * MIB, 500)}
    for i in range(1, iterations + 1):
        parents = (0,) if i == 1 else (0, 10 + i - 1)
        rdds.append(RddSpec(10 + i, parents, stages=frozenset({i}), job_id=i, call_site="ranks"))
        metrics[(10 + i, 0)] = PartitionMetrics(MIB * growth**i, 20.0 * i)
    return CostModel(rdds, metrics, DISK)


class TestIterativeLoop:
    def test_partitions_grow_and_so_do_their_disk_terms(self):
        model = loop_model(4)
        writes = [model.write_ms((10 + i, 0)) for i in range(1, 5)]
        assert writes == sorted(writes) and writes[-1] == pytest.approx(2.0 * 1.5**4)

    def test_latest_iteration_inherits_the_previous_ones_cross_job_references(self):
        model = loop_model(4)
        for stage in range(5):
            model.complete_stage(stage)
        model.set_current_job(4)
        # the DAG shows no reader of ranks_4 yet; ranks_3 was read by one later-job child
        assert model.reference_stages((14, 0)) == frozenset()
        assert model.future_refs((14, 0)) == 1
        assert model.future_refs((13, 0)) == 0  # an older iteration: dead

    def test_a_loop_invariant_dataset_stays_alive_between_jobs(self):
        model = loop_model(4)
        for stage in range(5):
            model.complete_stage(stage)
        model.set_current_job(4)
        # links was read in jobs 3 and 4: assumed to stay in the loop (the authors' +2)
        assert model.future_refs((0, 0)) == 2

    def test_pending_stage_of_the_loop_is_a_dag_reference(self):
        model = loop_model(4)
        for stage in range(4):
            model.complete_stage(stage)
        model.set_current_job(4)
        assert model.reference_stages((0, 0)) == {4}
        assert model.reference_stages((13, 0)) == {4}
        assert model.next_reference((13, 0)) == 4

    def test_recompute_of_a_late_iteration_walks_back_to_stored_data(self):
        model = loop_model(3)
        model.set_location((0, 0), Location.MEMORY)
        assert model.recompute_ms((13, 0)) == 60 + 40 + 20
        model.set_location((12, 0), Location.DISK)
        assert model.recompute_ms((13, 0)) == pytest.approx(60 + 1.5**2 * 1.0)

    def test_dead_rdds_are_the_auto_unpersist_candidates(self):
        model = loop_model(3)
        for stage in range(4):
            model.complete_stage(stage)
        model.set_current_job(5)  # two jobs later: nothing of the loop is referenced
        assert model.dead_rdds() == [0, 11, 12, 13]


class TestInputs:
    def test_a_model_needs_a_disk_cost(self):
        with pytest.raises(ValueError, match="DiskCost"):
            CostModel([RddSpec(0)])

    @pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
    def test_bad_metrics_are_rejected(self, value):
        with pytest.raises(ValueError, match="finite number"):
            PartitionMetrics(size_bytes=value)

    def test_a_parent_announced_after_its_child_updates_the_childs_recompute_time(self):
        metrics = {(1, 0): PartitionMetrics(MIB, 10), (0, 0): PartitionMetrics(MIB, 5)}
        model = CostModel([RddSpec(1, (0,))], metrics, DISK)
        model.observe((9, 0), MIB, 7)
        assert model.recompute_ms((1, 0)) == 15
        model.add_rdd(RddSpec(0, (9,)))
        assert model.recompute_ms((1, 0)) == 22

    def test_an_rdd_cannot_be_its_own_parent(self):
        with pytest.raises(ValueError, match="itself"):
            RddSpec(3, (3,))


# ---- the memoised model always equals one built from scratch in the final state -------------

_mutations = st.lists(
    st.one_of(
        st.tuples(
            st.just("loc"),
            st.integers(0, 5),
            st.integers(0, 2),
            st.sampled_from(list(Location)),
        ),
        st.tuples(
            st.just("obs"),
            st.integers(0, 5),
            st.integers(0, 2),
            st.floats(0, 1e7),
            st.floats(0, 500),
        ),
        st.tuples(st.just("stage"), st.integers(0, 3)),
        st.tuples(st.just("task"), st.integers(0, 3), st.integers(0, 2)),
        st.tuples(st.just("end"), st.integers(0, 3), st.integers(0, 2)),
        st.tuples(st.just("job"), st.integers(0, 3)),
        st.tuples(st.just("add"), st.integers(6, 8), st.integers(0, 5), st.integers(0, 4)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(_mutations)
def test_cached_costs_match_a_fresh_model(mutations):
    rdds = [
        RddSpec(0, (), 3, frozenset({0}), job_id=0, call_site="a"),
        RddSpec(1, (0,), 3, frozenset({0, 1}), job_id=0, call_site="b"),
        RddSpec(2, (0,), 3, frozenset({1}), job_id=1, call_site="b"),
        RddSpec(3, (1, 2), 3, frozenset({2}), shuffled=True, job_id=1),
        RddSpec(4, (3,), 3, frozenset({2}), job_id=2, call_site="b"),
        RddSpec(5, (4, 1), 3, frozenset({3}), job_id=2),
    ]
    live = CostModel(rdds, disk=DISK)
    metrics: dict = {}
    locations: dict = {}
    stages: set = set()
    started: dict = {}
    ended: set = set()
    job = None
    keys = [(r, s) for r in range(9) for s in range(3)]
    for mutation in mutations:
        if mutation[0] == "add":  # a new RDD (or new stages of one) in a later job
            _, rdd_id, parent, stage = mutation
            spec = RddSpec(rdd_id, (parent,), 3, frozenset({stage}), job_id=stage, call_site="b")
            rdds = [r for r in rdds if r.rdd_id != rdd_id] + [spec]
            live.add_rdd(spec)
        elif mutation[0] == "job":
            job = mutation[1]
            live.set_current_job(job)
        elif mutation[0] == "loc":
            _, r, s, loc = mutation
            live.set_location((r, s), loc)
            locations[(r, s)] = loc
        elif mutation[0] == "task":  # a stage's task for a split starts (it reads what is
            _, stage, split = mutation  # stored of that split then, computes the rest)
            live.start_task(stage, split)
            if stage not in stages and (stage, split) not in started:
                started[(stage, split)] = {
                    r for (r, s), where in locations.items() if s == split and where != "NONE"
                }
        elif mutation[0] == "end":  # that task ended: it has read the split
            _, stage, split = mutation
            live.end_task(stage, split)
            if stage not in stages:
                ended.add((stage, split))
        elif mutation[0] == "obs":
            _, r, s, size, ms = mutation
            live.observe((r, s), size, ms)
            metrics[(r, s)] = PartitionMetrics(size, ms)
        else:
            live.complete_stage(mutation[1])
            stages.add(mutation[1])
        [live.cost(k) for k in keys]  # fill the memo between mutations
    fresh = CostModel(
        rdds,
        metrics,
        DISK,
        completed_stages=stages,
        started_tasks=[(stage, split, rdds) for (stage, split), rdds in started.items()],
        ended_tasks=ended,
        locations=locations,
        current_job=job,
    )
    for key in keys:
        assert live.cost(key) == fresh.cost(key), key
