"""A long-lived eviction index (the manager keeps one per executor, fed between decisions)
answers exactly as a fresh one built from the final residents."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from costmodel import Location, PartitionCost, PartitionState, PolicyContext, TableCosts
from costmodel.eviction_index import EvictionIndex
from costmodel.policies import get_policy

MEM, DSK = Location.MEMORY, Location.DISK

# RDD lineage 0 <- 1 <- 2 <- 3, 0 <- 4 and 5 alone: propagation has relatives to raise
PARENTS = {1: (0,), 2: (1,), 3: (2,), 4: (0,)}

partition = st.fixed_dictionaries(
    {
        "rdd": st.integers(0, 5),
        "split": st.integers(0, 3),
        "size": st.integers(1, 40),
        "f": st.sampled_from([0.0, 1.0, 2.0, 3.0]),
        "r": st.sampled_from([0.0, 1.0, 5.0, 20.0, 80.0]),
        "w": st.sampled_from([1.0, 4.0, 30.0]),
        "access": st.integers(0, 20),
        "next": st.one_of(st.none(), st.integers(0, 6)),
    }
)


def _world(parts, incoming):
    unique = {}
    for p in parts:
        unique.setdefault((p["rdd"], p["split"]), p)
    unique.pop((incoming["rdd"], incoming["split"]), None)
    everyone = [*unique.values(), incoming]
    costs = TableCosts(
        {
            (p["rdd"], p["split"]): PartitionCost(
                p["f"], p["r"], p["w"], p["w"] / 2, size_bytes=float(p["size"])
            )
            for p in everyone
        },
        reference_counts={(p["rdd"], p["split"]): int(p["f"]) for p in everyone},
        next_references={
            (p["rdd"], p["split"]): (None if p["f"] == 0 else (p["next"] or 0)) for p in everyone
        },
        parents=PARENTS,
    )
    resident = [
        PartitionState((p["rdd"], p["split"]), float(p["size"]), MEM, float(p["access"]))
        for p in unique.values()
    ]
    mine = PartitionState((incoming["rdd"], incoming["split"]), float(incoming["size"]), MEM, 99.0)
    return costs, resident, mine


def _index(policy, ctx, resident) -> EvictionIndex:
    index = EvictionIndex(policy.ranking(ctx))
    for state in resident:
        index.put(state.key, state.size_bytes, state.last_access)
    return index


@settings(max_examples=300, deadline=None)
@given(
    st.lists(partition, min_size=0, max_size=24),
    partition,
    st.integers(10, 300),
    st.sampled_from(["blaze", "lrc", "mrd", "mem_only", "mem_disk"]),
    st.randoms(use_true_random=False),
)
def test_an_index_fed_piecemeal_answers_like_a_fresh_one(parts, incoming, budget, name, rnd):
    costs, resident, mine = _world(parts, incoming)
    ctx = PolicyContext(costs, margin_bytes=3.0)
    policy = get_policy(name)
    expected = policy.admit(mine, resident, budget, ctx)
    # the manager's way: blocks arrive in any order, some with a stale size or access first,
    # some leave again, and decisions read the index in between
    index = EvictionIndex(policy.ranking(ctx))
    order = list(resident)
    rnd.shuffle(order)
    for state in order:
        passing = (state.key[0] + 100, state.key[1])  # a block that leaves again
        costs._costs[passing] = PartitionCost(1.0, 0.5, 1.0, 0.5, size_bytes=5.0)
        index.put(state.key, state.size_bytes + 7, state.last_access - 5)
        index.put(passing, 5.0, 0.0)
    policy.choose(mine, index, float(budget), budget, ctx)  # under pressure: reads the index
    for state in order:
        index.put(state.key, state.size_bytes, state.last_access)
        index.discard((state.key[0] + 100, state.key[1]))
    used = sum(s.size_bytes for s in resident)
    for _ in range(2):  # the index is read twice: a read leaves it as it was
        got = policy.choose(mine, index, used, budget, ctx)
        assert (got.admit_to, got.victims) == (expected.admit_to, expected.victims)
    assert len(index) == len(resident)


@settings(max_examples=100, deadline=None)
@given(st.lists(partition, min_size=1, max_size=20), partition, st.data())
def test_changed_ranks_are_taken_in_after_invalidation(parts, incoming, data):
    """Costs that change between decisions (lower or higher) reorder the index once the
    changed keys are invalidated; removed partitions never come back as victims."""
    costs, resident, mine = _world(parts, incoming)
    ctx = PolicyContext(costs, margin_bytes=0.0)
    policy = get_policy("blaze")
    index = _index(policy, ctx, resident)
    used = sum(s.size_bytes for s in resident)
    policy.choose(mine, index, used, 60, ctx)  # builds the heap
    keys = [s.key for s in resident]
    assume(keys)
    changed = data.draw(st.lists(st.sampled_from(keys), unique=True))
    for key in changed:
        old = costs._costs[key]
        costs._costs[key] = PartitionCost(
            data.draw(st.sampled_from([1.0, 2.0])),
            data.draw(st.sampled_from([0.5, 3.0, 50.0])),
            old.write_ms,
            old.read_ms,
            size_bytes=old.size_bytes,
        )
    index.invalidate(changed)
    gone = data.draw(st.lists(st.sampled_from(keys), unique=True))
    for key in gone:
        index.discard(key)
    remaining = [s for s in resident if s.key not in gone]
    used = sum(s.size_bytes for s in remaining)
    expected = policy.admit(mine, remaining, 60, ctx)
    got = policy.choose(mine, index, used, 60, ctx)
    assert (got.admit_to, got.victims) == (expected.admit_to, expected.victims)


def test_reading_the_first_victims_does_not_rank_every_resident():
    """Sub-linear: after the heap is built, a decision ranks only what it reads."""
    calls = []

    def rank(key, access):
        calls.append(key)
        return (access, key)

    index = EvictionIndex(rank)
    for split in range(5000):
        index.put((1, split), 10.0, float(split))
    stream = index.ascending()
    assert next(stream)[0] == (1, 0)
    stream.close()
    calls.clear()
    index.put((2, 0), 10.0, -1.0)  # one new resident, older than all
    stream = index.ascending()
    first = [next(stream)[0] for _ in range(3)]
    stream.close()
    assert first == [(2, 0), (1, 0), (1, 1)]
    assert len(calls) < 10
