"""Blaze declines a persist call that costs more than it saves (costmodel.persisting), on real
local Spark: checked against compute counters inside the user's functions, Spark's own storage
and the decision log — and keeps every persist that pays."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import attached_managers

import blaze

pytestmark = pytest.mark.spark

PARTS = 4
ROWS = 10_000  # per partition
DIMS = 16
GENERATIONS = 5


@pytest.fixture
def attach(spark, bridge):
    yield from attached_managers(spark, bridge)


def _points(sc):
    """A stored input of (label, vector) rows, as a logistic regression's features."""
    rows = sc.parallelize(range(PARTS * ROWS), PARTS)
    return rows.map(lambda i: (float(i % 2), np.full(DIMS, float(i % 7)))).persist(blaze.BLAZE)


def _cheap(points, counts, generation):
    """``(y, x, margin)``: a cheap map that repeats its input in its output."""

    def score(split, rows):
        counts[split].add(1)
        return ((y, x, float(x[0]) + generation) for y, x in rows)

    return points.mapPartitionsWithIndex(score)


def _costly(points, counts, generation):
    """``(y, None, margin)``: a costly map (a sleep stands for the work) with a small output."""

    def score(split, rows):
        counts[split].add(1)
        time.sleep(0.3)
        return ((y, None, float(x[0]) + generation) for y, x in rows)

    return points.mapPartitionsWithIndex(score)


def _loop(sc, points, make):
    """Each generation is persisted by the program and read by two actions (a loss, then a
    gradient); returns per generation the computations of each partition, the answers, and
    the generation itself."""
    runs, answers, generations = [], [], []
    for generation in range(GENERATIONS):
        counts = [sc.accumulator(0) for _ in range(PARTS)]
        scored = make(points, counts, generation).cache()
        loss = scored.map(lambda t: t[2]).sum()
        gradient = scored.map(lambda t: t[0] * t[2]).sum()
        answers.append((loss, gradient))
        runs.append({split: c.value for split, c in enumerate(counts)})
        generations.append(scored)
    return runs, answers, generations


def _expected(generation):
    i = np.arange(PARTS * ROWS)
    margin = (i % 7).astype(float) + generation
    return margin.sum(), ((i % 2) * margin).sum()


def test_a_cheap_map_repeating_its_stored_input_is_fused_into_its_readers(sc, attach, bridge):
    manager = attach(policy="blaze", memory_budget="96m")
    points = _points(sc)
    points.count()
    runs, answers, generations = _loop(sc, points, _cheap)
    manager.sync()

    for generation, answer in enumerate(answers):
        assert answer == pytest.approx(_expected(generation))
    # the first generation is persisted: computed once, the second action reads the copy
    once, twice = dict.fromkeys(range(PARTS), 1), dict.fromkeys(range(PARTS), 2)
    assert runs[0] == once, runs
    # later ones, fused into each reader, are computed by each: from the first declined one
    # on, every generation (the verdict holds), and none is ever computed a third time
    fused = [r == twice for r in runs]
    assert any(fused) and all(r in (once, twice) for r in runs), (runs, list(manager.decision_log))
    first = fused.index(True)
    assert all(fused[first:]), runs
    stored = {b.rdd_id for s in bridge.storage_status() for b in s.blocks}
    assert not {g.id() for g in generations[first:]} & stored
    verdicts = [e for e in manager.decision_log if e["action"] == "decline_persist"]
    assert len(verdicts) == GENERATIONS - first  # once per dataset, not per read
    for entry in verdicts:
        assert entry["F"] == 2 and entry["store"] > entry["saved"], entry
    assert manager.report()["decisions"]["persist_declined"] == GENERATIONS - first


def test_a_costly_map_with_a_small_output_stays_persisted(sc, attach):
    manager = attach(policy="blaze", memory_budget="96m")
    points = _points(sc)
    points.count()
    runs, answers, _ = _loop(sc, points, _costly)
    manager.sync()

    for generation, answer in enumerate(answers):
        assert answer == pytest.approx(_expected(generation))
    assert runs == [dict.fromkeys(range(PARTS), 1)] * GENERATIONS  # the copy is read
    assert not [e for e in manager.decision_log if e["action"] == "decline_persist"]
    kept = [e for e in manager.decision_log if e["action"] == "keep_persist"]
    assert kept and all(e["saved"] > e["store"] for e in kept), kept  # weighed, and it paid
