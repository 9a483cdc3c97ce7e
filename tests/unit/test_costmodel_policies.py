"""Admission, eviction and planning rules of every policy, by example and by property."""

from __future__ import annotations

import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from costmodel import (
    POLICY_NAMES,
    CostModel,
    DiskCost,
    Location,
    PartitionCost,
    PartitionMetrics,
    PartitionState,
    PolicyContext,
    RddSpec,
    TableCosts,
    get_policy,
)

MEM, DSK, NON = Location.MEMORY, Location.DISK, Location.NONE


def pc(f: float, r: float, w: float = 1.0, rd: float = 1.0, size: float = 0.0) -> PartitionCost:
    return PartitionCost(future_refs=f, recompute_ms=r, write_ms=w, read_ms=rd, size_bytes=size)


def ctx_for(costs, margin: float = 0.0, **kwargs) -> PolicyContext:
    return PolicyContext(TableCosts(costs, **kwargs), margin_bytes=margin)


class TestBlazeAdmission:
    policy = get_policy("blaze")

    def test_fits_goes_to_memory(self):
        costs = {(1, 0): pc(1, 50)}
        decision = self.policy.admit(PartitionState((1, 0), 10), [], 100, ctx_for(costs))
        assert decision.admit_to == MEM and decision.victims == ()

    def test_no_future_reference_is_never_admitted(self):
        costs = {(1, 0): pc(0, 50)}
        decision = self.policy.admit(PartitionState((1, 0), 10), [], 100, ctx_for(costs))
        assert decision.admit_to == NON

    def test_victims_in_ascending_cost_until_the_space_is_free(self):
        costs = {
            (9, 0): pc(1, 1000, w=10, rd=10),  # incoming: cost 20
            (1, 0): pc(1, 3),  # cost 2 (disk: 1 + 1)
            (2, 0): pc(1, 1),  # cost 1 (recompute)
            (3, 0): pc(1, 9),  # cost 2 as well, bigger key
        }
        resident = [PartitionState((k, 0), 10, MEM) for k in (1, 2, 3)]
        decision = self.policy.admit(PartitionState((9, 0), 15), resident, 30, ctx_for(costs))
        assert decision.admit_to == MEM
        # needs 15 bytes: rdd 2 (cost 1) then rdd 1 (cost 2, smaller key than rdd 3)
        assert decision.victims == (((2, 0), NON), ((1, 0), DSK))

    def test_summed_victim_cost_may_not_exceed_the_incoming_cost(self):
        costs = {(9, 0): pc(1, 3, w=2, rd=1), (1, 0): pc(1, 2), (2, 0): pc(1, 2)}  # 3 vs 2 + 2
        resident = [PartitionState((1, 0), 10, MEM), PartitionState((2, 0), 10, MEM)]
        decision = self.policy.admit(PartitionState((9, 0), 20), resident, 20, ctx_for(costs))
        assert decision.victims == ()
        assert decision.admit_to == DSK  # comp 3 >= disk 3: spilled, not dropped

    def test_a_rejected_partition_is_dropped_when_recomputing_is_cheaper(self):
        costs = {(9, 0): pc(1, 0.5, w=5, rd=5), (1, 0): pc(1, 100, w=50, rd=50)}
        resident = [PartitionState((1, 0), 10, MEM)]
        decision = self.policy.admit(PartitionState((9, 0), 10), resident, 10, ctx_for(costs))
        assert decision == decision.__class__(NON, (), decision.reason)

    def test_cost_per_byte_filter(self):
        # incoming: cost 10 for 10 bytes; resident: cost 5 for 4 bytes (denser) -> kept
        costs = {(9, 0): pc(1, 10, w=100, rd=100), (1, 0): pc(1, 5, w=100, rd=100)}
        resident = [PartitionState((1, 0), 4, MEM)]
        decision = self.policy.admit(PartitionState((9, 0), 10), resident, 10, ctx_for(costs))
        assert decision.victims == ()
        unfiltered = get_policy("blaze", size_ratio_filter=False)
        decision = unfiltered.admit(PartitionState((9, 0), 10), resident, 10, ctx_for(costs))
        assert decision.victims == (((1, 0), NON),)

    def test_margin_frees_a_little_more_than_needed(self):
        costs = {(9, 0): pc(1, 100, w=100, rd=100)} | {(k, 0): pc(1, k) for k in (1, 2, 3)}
        resident = [PartitionState((k, 0), 10, MEM) for k in (1, 2, 3)]
        incoming = PartitionState((9, 0), 10)
        tight = self.policy.admit(incoming, resident, 30, ctx_for(costs, margin=0))
        roomy = self.policy.admit(incoming, resident, 30, ctx_for(costs, margin=5))
        assert [k for k, _ in tight.victims] == [(1, 0)]
        assert [k for k, _ in roomy.victims] == [(1, 0), (2, 0)]

    def test_dropping_a_child_raises_its_parents_future_references(self):
        # rdd 2 is a child of rdd 1; both resident in split 0. Dropping 2 (cost 0.8) adds its
        # F to 1: 1's cost goes from 1 to 2 (disk: 0.5 + 0.5 x 3 = 2), so 3 (cost 1.5) is next
        costs = {
            (9, 0): pc(1, 100, w=100, rd=100),
            (1, 0): pc(1, 1.0, w=0.5, rd=0.5),
            (2, 0): pc(2, 0.4),  # cost 0.8
            (3, 0): pc(1, 1.5, w=5, rd=5),
        }
        resident = [PartitionState((k, 0), 10, MEM) for k in (1, 2, 3)]
        ctx = ctx_for(costs, parents={2: (1,)})
        decision = self.policy.admit(PartitionState((9, 0), 20), resident, 30, ctx)
        assert decision.victims == (((2, 0), NON), ((3, 0), NON))
        plain = self.policy.admit(PartitionState((9, 0), 20), resident, 30, ctx_for(costs))
        assert plain.victims == (((2, 0), NON), ((1, 0), DSK))

    def test_dropping_a_parent_raises_its_childs_recomputation(self):
        costs = {
            (9, 0): pc(1, 100, w=100, rd=100),
            (1, 0): pc(1, 1.0),  # parent: cost 1 (recompute)
            (2, 0): pc(1, 1.2, w=10, rd=10),  # child: 1.2 -> 2.2 once 1 is gone
            (3, 0): pc(1, 1.5, w=10, rd=10),
        }
        resident = [PartitionState((k, 0), 10, MEM) for k in (1, 2, 3)]
        ctx = ctx_for(costs, parents={2: (1,)})
        decision = self.policy.admit(PartitionState((9, 0), 20), resident, 30, ctx)
        assert decision.victims == (((1, 0), NON), ((3, 0), NON))

    def test_propagation_moves_a_raised_partition_behind_a_cheaper_one(self):
        # dropping B (a child of A) raises A from cost 1 to 2, behind C (1.5): C goes next
        costs = {
            (9, 0): pc(1, 100, w=100, rd=100),
            (2, 0): pc(2, 0.25),  # B: cost 0.5, dropped
            (1, 0): pc(1, 1.0, w=0.5, rd=0.5),  # A: cost 1 -> 2 once B is dropped
            (3, 0): pc(1, 1.5, w=5, rd=5),  # C
            (4, 0): pc(1, 3, w=10, rd=10),  # D
        }
        sizes = {(2, 0): 10, (1, 0): 100, (3, 0): 100, (4, 0): 100}
        resident = [PartitionState(k, size, MEM) for k, size in sizes.items()]
        ctx = ctx_for(costs, parents={2: (1,)})
        incoming = PartitionState((9, 0), 20)
        decision = self.policy.admit(incoming, resident, 315, ctx)
        assert decision.victims == (((2, 0), NON), ((3, 0), NON))

    def test_promotion_needs_a_cost_above_the_lowest_share(self):
        resident = [PartitionState((k, 0), 10, MEM) for k in range(1, 11)]
        costs = {(k, 0): pc(1, k, w=100, rd=100) for k in range(1, 11)}
        low = costs | {(9, 7): pc(1, 1000, w=0.5, rd=0.5)}  # on disk: cost Rd x F = 0.5
        ctx = ctx_for(low)
        decision = self.policy.admit(PartitionState((9, 7), 10, DSK), resident, 100, ctx)
        assert decision.admit_to == DSK and decision.victims == ()
        high = costs | {(9, 7): pc(1, 1000, w=9, rd=9)}  # cost 9 >= the 30% rank (cost 3)
        decision = self.policy.admit(PartitionState((9, 7), 10, DSK), resident, 100, ctx_for(high))
        assert decision.admit_to == MEM and decision.victims == (((1, 0), NON),)

    def test_promotion_when_space_is_free(self):
        costs = {(9, 7): pc(1, 1000, w=0.5, rd=0.5)}
        decision = self.policy.admit(PartitionState((9, 7), 10, DSK), [], 100, ctx_for(costs))
        assert decision.admit_to == MEM

    def test_needs_a_cost_source(self):
        with pytest.raises(ValueError, match="costs"):
            self.policy.admit(PartitionState((1, 0), 1), [], 10, PolicyContext())


class TestBaselines:
    def states(self):
        return [
            PartitionState((1, 0), 10, MEM, last_access=3),
            PartitionState((2, 0), 10, MEM, last_access=1),
            PartitionState((3, 0), 10, MEM, last_access=2),
        ]

    def test_lru_evicts_the_least_recently_used(self):
        decision = get_policy("lru").admit(PartitionState((9, 0), 10), self.states(), 30)
        assert decision.admit_to == MEM and decision.victims == (((2, 0), NON),)

    def test_mem_disk_spills_and_skips_the_incoming_rdd(self):
        incoming = PartitionState((2, 1), 10)
        decision = get_policy("mem_disk").admit(incoming, self.states(), 30)
        assert decision.victims == (((3, 0), DSK),)

    def test_mem_only_evicts_nothing_when_it_cannot_make_room(self):
        states = [PartitionState((2, k), 10, MEM) for k in range(3)]
        decision = get_policy("mem_only").admit(PartitionState((2, 5), 10), states, 30)
        assert decision.admit_to == NON and decision.victims == ()

    def test_lrc_evicts_the_smallest_reference_count(self):
        costs = {(k, 0): pc(1, 1) for k in (1, 2, 3, 9)}
        ctx = ctx_for(costs, reference_counts={(1, 0): 0, (2, 0): 5, (3, 0): 2})
        decision = get_policy("lrc").admit(PartitionState((9, 0), 20), self.states(), 30, ctx)
        assert decision.victims == (((1, 0), DSK), ((3, 0), DSK))

    def test_mrd_evicts_the_farthest_reference_and_unreferenced_first(self):
        costs = {(k, 0): pc(1, 1) for k in (1, 2, 3, 9)}
        ctx = ctx_for(costs, next_references={(1, 0): 4, (2, 0): 9, (3, 0): None})
        decision = get_policy("mrd").admit(PartitionState((9, 0), 20), self.states(), 30, ctx)
        assert decision.victims == (((3, 0), DSK), ((2, 0), DSK))

    def test_mrd_plan_order(self):
        costs = {(k, 0): pc(1, 1) for k in (1, 2, 3)}
        ctx = ctx_for(costs, next_references={(1, 0): 4, (2, 0): 9, (3, 0): None})
        plan = get_policy("mrd", spill=False).plan(self.states(), 10, ctx)
        assert plan.states == {(3, 0): NON, (2, 0): NON, (1, 0): MEM}
        assert plan.evictions == (((3, 0), NON), ((2, 0), NON))

    def test_unknown_policy_names_the_known_ones(self):
        with pytest.raises(ValueError, match=r"unknown cache policy 'fifo'.*blaze"):
            get_policy("fifo")

    def test_bad_option_is_named(self):
        with pytest.raises(TypeError, match="'lru'"):
            get_policy("lru", colour="red")

    def test_negative_budget(self):
        with pytest.raises(ValueError, match="budget_bytes"):
            get_policy("lru").plan([], -1)


class TestBlazePlan:
    def test_plan_on_a_real_model(self):
        mib = 1 << 20
        rdds = [
            RddSpec(0, (), stages=frozenset({0})),
            RddSpec(1, (0,), stages=frozenset({0}), cached=True),
            RddSpec(2, (1,), stages=frozenset({1})),
            RddSpec(3, (1,), stages=frozenset({2})),
            RddSpec(4, (0,), stages=frozenset({0})),  # read by nobody later: dead
        ]
        metrics = {
            (0, 0): PartitionMetrics(mib, 1000),
            (1, 0): PartitionMetrics(2 * mib, 10),
            (4, 0): PartitionMetrics(mib, 1),
        }
        model = CostModel(rdds, metrics, DiskCost(2, 1), completed_stages=[0])
        states = [
            PartitionState((1, 0), 2 * mib, MEM),
            PartitionState((4, 0), mib, MEM),
        ]
        plan = get_policy("blaze").plan(states, 10 * mib, PolicyContext(model))
        assert plan.states == {(1, 0): MEM, (4, 0): NON}
        assert plan.evictions == (((4, 0), NON),)
        tight = get_policy("blaze").plan(states, mib, PolicyContext(model))
        # F(1) = 2, R = 1010 ms, W = 4, Rd = 2: disk cost 8 < 2020: spilled
        assert tight.states == {(1, 0): DSK, (4, 0): NON}


# ---- properties --------------------------------------------------------------------------------


@st.composite
def scenarios(draw):
    n = draw(st.integers(1, 25))
    keys = draw(
        st.lists(
            st.tuples(st.integers(0, 6), st.integers(0, 4)), min_size=n, max_size=n, unique=True
        )
    )
    costs, states = {}, []
    for i, key in enumerate(keys):
        f = draw(st.sampled_from([0, 0, 1, 2, 3, 7]))
        r = draw(st.floats(0, 1000))
        w = draw(st.floats(0, 200))
        rd = draw(st.floats(0, 200))
        size = draw(st.integers(0, 100))
        costs[key] = pc(f, r, w, rd)
        location = draw(st.sampled_from([MEM, MEM, DSK, NON]))
        states.append(PartitionState(key, size, location, last_access=float(i % 7)))
    parents = {r: tuple(p for p in range(r) if draw(st.booleans())) for r in range(7)}
    budget = draw(st.integers(0, 800))
    return costs, states, budget, parents


def _cost(costs, state):
    return TableCosts(costs).cost(state.key, on_disk=state.location == DSK)


@settings(max_examples=50, deadline=None)
@given(scenarios(), st.sampled_from(POLICY_NAMES))
def test_plan_never_exceeds_the_budget(scenario, name):
    costs, states, budget, parents = scenario
    plan = get_policy(name).plan(states, budget, ctx_for(costs, parents=parents))
    size = {s.key: s.size_bytes for s in states}
    in_memory = sum(size[k] for k, loc in plan.states.items() if loc == MEM)
    assert in_memory <= budget
    assert in_memory == plan.memory_bytes
    assert set(plan.states) == set(size)
    assert set(plan.eviction_order) == {k for k, loc in plan.states.items() if loc == MEM}


@settings(max_examples=50, deadline=None)
@given(scenarios(), st.sampled_from(POLICY_NAMES))
def test_admission_never_exceeds_the_budget(scenario, name):
    costs, states, budget, parents = scenario
    incoming, resident = states[0], states[1:]
    decision = get_policy(name).admit(incoming, resident, budget, ctx_for(costs, parents=parents))
    moved = set(decision.freed_keys)
    assert moved <= {s.key for s in resident if s.location == MEM}
    if decision.admit_to == MEM:
        after = sum(s.size_bytes for s in resident if s.location == MEM and s.key not in moved)
        assert after + incoming.size_bytes <= budget
    else:
        assert decision.victims == ()


@settings(max_examples=50, deadline=None)
@given(scenarios())
def test_blaze_never_keeps_a_partition_without_future_reference(scenario):
    costs, states, budget, parents = scenario
    ctx = ctx_for(costs, parents=parents)
    plan = get_policy("blaze").plan(states, budget, ctx)
    for state in states:
        if costs[state.key].future_refs == 0:
            assert plan.states[state.key] == NON
    decision = get_policy("blaze").admit(states[0], states[1:], budget, ctx)
    if costs[states[0].key].future_refs == 0:
        assert decision.admit_to == NON
    for key, destination in decision.victims:
        if costs[key].future_refs == 0:
            assert destination == NON


@settings(max_examples=50, deadline=None)
@given(scenarios())
def test_blaze_drops_exactly_when_recomputing_is_cheaper(scenario):
    costs, states, budget, _ = scenario  # no parents: no propagation, costs stay as drawn
    ctx = ctx_for(costs)
    plan = get_policy("blaze").plan(states, budget, ctx)
    for state in states:
        cost = _cost(costs, state)
        if plan.states[state.key] == MEM or cost.future_refs == 0:
            continue
        expected = NON if cost.comp_cost < cost.disk_cost else DSK
        assert plan.states[state.key] == expected
    incoming, resident = states[0], states[1:]
    decision = get_policy("blaze").admit(incoming, resident, budget, ctx)
    for key, destination in decision.victims:
        cost = costs[key]  # residents are in memory: on_disk False
        if cost.future_refs > 0:
            assert destination == (NON if cost.comp_cost < cost.disk_cost else DSK)
    mine = _cost(costs, incoming)
    if decision.admit_to != MEM and mine.future_refs > 0 and incoming.location != DSK:
        assert decision.admit_to == (NON if mine.comp_cost < mine.disk_cost else DSK)


@settings(max_examples=50, deadline=None)
@given(scenarios(), st.sampled_from(POLICY_NAMES), st.randoms(use_true_random=False))
def test_decisions_are_deterministic_and_order_independent(scenario, name, rnd: random.Random):
    costs, states, budget, parents = scenario
    policy = get_policy(name)
    first = policy.plan(states, budget, ctx_for(costs, parents=parents))
    shuffled = list(states)
    rnd.shuffle(shuffled)
    again = get_policy(name).plan(shuffled, budget, ctx_for(costs, parents=parents))
    assert first == again
    incoming, resident = states[0], states[1:]
    reordered = list(resident)
    rnd.shuffle(reordered)
    a = policy.admit(incoming, resident, budget, ctx_for(costs, parents=parents))
    b = policy.admit(incoming, reordered, budget, ctx_for(costs, parents=parents))
    assert a == b


def _published_blaze_victims(incoming, resident, budget, costs, margin):
    """The rule as the module docstring states it, by sorting everything (no propagation:
    the scenario has no lineage): victims ascending in (cost, key), each no costlier and
    denser in cost per byte than the incoming one, summed no costlier, until the need plus
    the margin is freed; nothing at all if the need cannot be met. An empty block frees
    nothing and is no victim."""
    mine = costs[incoming.key]
    others = [s for s in resident if s.location == MEM and s.key != incoming.key]
    need = sum(s.size_bytes for s in others) + incoming.size_bytes - budget
    others = [s for s in others if s.size_bytes > 0]
    limit = mine.cost
    eligible = sorted(
        (costs[s.key].cost, s.key, s.size_bytes)
        for s in others
        if costs[s.key].cost <= limit
        and (
            costs[s.key].cost <= 0 or limit * s.size_bytes > incoming.size_bytes * costs[s.key].cost
        )
    )
    victims, freed, total = [], 0.0, 0.0
    for value, key, size in eligible:
        if freed >= need + margin or total + value > limit:
            break
        victims.append((key, costs[key].fallback()))
        freed += size
        total += value
    return tuple(victims) if freed >= need else ()


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.floats(0, 20), st.integers(1, 40))
def test_lazy_index_reads_the_victims_the_published_rule_names(scenario, margin, need):
    costs, states, _, _ = scenario
    incoming, resident = states[0], states[1:]
    if incoming.location == DSK or not (costs[incoming.key].future_refs > 0):
        incoming = PartitionState(incoming.key, incoming.size_bytes, MEM)
    assume(costs[incoming.key].cost > 0)
    used = sum(s.size_bytes for s in resident if s.location == MEM)
    budget = max(used + incoming.size_bytes - need, incoming.size_bytes)  # a little to free
    decision = get_policy("blaze").admit(incoming, resident, budget, ctx_for(costs, margin))
    expected = _published_blaze_victims(incoming, resident, budget, costs, margin)
    if used + incoming.size_bytes <= budget:
        assert decision.victims == ()
    else:
        assert decision.victims == expected
