"""Where a source's load factors go next: the best operator-level split first, then data-level
refinement by queue state, and never a point measured worse than one already measured.

Why the search starts at an operator-level split. Data-level partitioning can express every
operator-level split (split ``m``: operators ``0..m-1`` take all their records at the source,
the rest none; split 0 is all-at-Spark, split K all-local). A controller that starts where
the model *as a whole* points (the LP) and then only follows queue states can settle on a mix
that the real machine runs worse than a plain split — which the previous controller did
(0.61-1.28x the best operator-level split). So the search

1. evaluates every operator-level split with the model and starts at the best one;
2. refines along an edge towards a second split (below), stepping by queue state with
   :class:`~streaming.jarvis.controller.StepHeuristic`;
3. records the *measured* rate of every point it visits and, when its move budget is spent or
   the queue is stable, settles on the best measured point — which is at least the start
   split's measured rate, since the start is measured first.

Why the moves follow an edge between two splits. In cumulative form (``a_k`` = share of the
input whose operator ``k`` runs locally, non-increasing in ``k``) every plan is a unique
convex mix of the K+1 operator-level splits, with weight ``a_{m-1} - a_m`` on split ``m``.
CPU and bytes per record are linear in the weights and the rate is limited by two resources,
so an optimal plan mixes at most two splits (an LP with two resource rows has a basic optimum
with at most two non-zero weights). The refinement therefore walks the edge from the start
split to a *partner* split: on the side the queue state asks for (less CPU when congested,
fewer bytes when idle) the model picks the partner whose mix with the start it predicts best,
and the first position (the predicted balance point of the two resources); queue states move
along the edge after that. Moving only the first proxy below 1 (the paper's frontier rule)
mixes only *adjacent* splits, and here the best mix is typically split 2 with split 4
(forward some windowed records before the join, aggregate the rest locally).

Measured rate (:func:`sustained_rate`): input records per second the point sustains with the
CPU and bytes per record measured in an interval, ``min(records/cpu x budget,
records/bytes x bandwidth)``. Unlike the raw records per interval it does not depend on CPU
debt or network tokens carried over from the previous point, so points are compared on what
they cost, not on when they ran.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streaming.jarvis.controller import (
    QueryProfile,
    QueueState,
    StepHeuristic,
    best_operator_level,
    factors_from_cumulative,
    operator_level_factors,
    plan_cost,
)

__all__ = ["LoadSearch", "sustained_rate"]


def sustained_rate(
    records: int,
    cpu_s: float,
    nbytes: float,
    cpu_budget: float,
    bandwidth: float,
    wall_s: float | None = None,
) -> float:
    """Records per second a plan sustains at these measured costs under this budget.

    ``wall_s`` is given when the input (not a resource) limited the interval: then the rate
    cannot exceed what arrived, ``records / wall_s``.
    """
    if records <= 0:
        return 0.0
    limits = []
    if cpu_s > 0:
        limits.append(records / cpu_s * cpu_budget)
    if nbytes > 0:
        limits.append(records / nbytes * bandwidth)
    if wall_s is not None and wall_s > 0:
        limits.append(records / wall_s)
    return float(min(limits)) if limits else float("inf")


@dataclass(frozen=True)
class _Point:
    """A plan on an edge: ``(1 - t) x split anchor + t x split partner`` (cumulative form)."""

    anchor: int
    partner: int | None
    t: float


@dataclass
class _Samples:
    point: _Point
    factors: tuple[float, ...]
    total: float = 0.0
    count: int = 0

    @property
    def mean(self) -> float:
        return self.total / self.count


class LoadSearch:
    """One source's search over load factors within one budget (see the module docstring).

    ``restart`` (a new budget or profile) returns the start factors; ``observe`` (after each
    judged interval at the current factors) returns the factors for the next interval.
    ``max_moves`` bounds the refinement: with half-second intervals, 6 moves plus the start's
    measurement settle within 3.5 s of the restart.
    """

    def __init__(
        self,
        num_operators: int,
        max_moves: int = 6,
        heuristic: StepHeuristic | None = None,
    ) -> None:
        if num_operators < 1:
            raise ValueError(f"num_operators={num_operators} must be at least 1")
        if max_moves < 0:
            raise ValueError(f"max_moves={max_moves} must be >= 0")
        self.num_operators, self.max_moves = num_operators, max_moves
        self.heuristic = heuristic or StepHeuristic()
        k = num_operators
        self._splits = np.array([[1.0] * m + [0.0] * (k - m) for m in range(k + 1)])
        self._cpu = np.zeros(k + 1)  # model CPU s per input record of each split
        self._bytes = np.zeros(k + 1)  # model bytes per input record of each split
        self._budget = (1.0, 1.0)
        self._point = _Point(k, None, 0.0)
        self._samples: dict[tuple[float, ...], _Samples] = {}
        self.start_split = k
        self.moves_left = 0
        self.settled = False
        self._stable = 0

    # -- state ------------------------------------------------------------------------
    @property
    def factors(self) -> tuple[float, ...]:
        return self._factors(self._point)

    def _factors(self, point: _Point) -> tuple[float, ...]:
        a = self._splits[point.anchor]
        if point.partner is not None and point.t > 0:
            a = (1 - point.t) * a + point.t * self._splits[point.partner]
        return factors_from_cumulative(a)

    @property
    def best_measured(self) -> tuple[tuple[float, ...], float] | None:
        """The best measured point so far and its mean measured rate."""
        if not self._samples:
            return None
        best = max(self._samples.values(), key=lambda s: s.mean)
        return best.factors, best.mean

    def measured(self, factors: tuple[float, ...]) -> float | None:
        """Mean measured rate of a visited point (None if never measured)."""
        samples = self._samples.get(_key(factors))
        return None if samples is None else samples.mean

    # -- search -----------------------------------------------------------------------
    def restart(
        self, profile: QueryProfile, cpu_budget: float, bandwidth: float
    ) -> tuple[float, ...]:
        """Forget what was measured (it was under another budget) and start at the best
        operator-level split the model predicts."""
        k = self.num_operators
        if len(profile.operators) != k:
            raise ValueError(f"profile has {len(profile.operators)} operators, search has {k}")
        for m in range(k + 1):
            self._cpu[m], self._bytes[m] = plan_cost(profile, operator_level_factors(k, m))
        self._budget = (float(cpu_budget), float(bandwidth))
        start = best_operator_level(profile, cpu_budget, bandwidth).load_factors
        self.start_split = round(sum(start))
        self._point = _Point(self.start_split, None, 0.0)
        self._samples.clear()
        self.moves_left = self.max_moves
        self.settled = False
        self._stable = 0
        self.heuristic.reset()
        return self.factors

    def observe(self, rate: float, state: QueueState) -> tuple[float, ...]:
        """Record the current point's measured rate; return the next interval's factors."""
        if not np.isfinite(rate) or rate < 0:
            raise ValueError(f"measured rate {rate} must be finite and >= 0")
        key = _key(self.factors)
        samples = self._samples.setdefault(key, _Samples(self._point, self.factors))
        samples.total += rate
        samples.count += 1
        if self.settled:
            return self.factors
        if self.moves_left <= 0:
            return self.settle()
        delta = self.heuristic.move(state)
        if delta == 0.0 or not self._move(delta):
            self._stable += 1  # stable, or at the end of the plan space in that direction
            return self.settle() if self._stable >= 2 else self.factors
        self._stable = 0
        self.moves_left -= 1
        return self.factors

    def settle(self) -> tuple[float, ...]:
        """Stop searching: go to the best measured point (the start split if nothing was
        measured yet) and stay there until the next restart."""
        if self._samples:
            self._point = max(self._samples.values(), key=lambda s: s.mean).point
        else:
            self._point = _Point(self.start_split, None, 0.0)
        self.settled = True
        return self.factors

    def _move(self, delta: float) -> bool:
        """Move ``|delta|`` along the edge, shedding local work if ``delta > 0``; False when
        no split lies in that direction."""
        point, shed = self._point, delta > 0
        if point.partner is None or (point.t <= 0 and not self._towards(point, shed)):
            partner = self._partner(point.anchor, shed)
            if partner is None:
                return False
            t = self._balance(point.anchor, partner)  # the model's best spot on the edge
            self._point = _Point(point.anchor, partner, t if t > 0 else min(1.0, abs(delta)))
            self.heuristic.reset()  # a new edge: bracket afresh around the model's guess
            return True
        t = point.t + abs(delta) if self._towards(point, shed) else point.t - abs(delta)
        if t > 1 and point.t >= 1:  # at the partner split already: continue from there
            self._point = _Point(point.partner, None, 0.0)
            return self._move(delta)
        self._point = _Point(point.anchor, point.partner, float(min(1.0, max(0.0, t))))
        return True

    def _towards(self, point: _Point, shed: bool) -> bool:
        """Whether raising ``t`` moves in the requested direction."""
        assert point.partner is not None
        a, p = point.anchor, point.partner
        return bool(self._cpu[p] < self._cpu[a] if shed else self._bytes[p] < self._bytes[a])

    def _partner(self, anchor: int, shed: bool) -> int | None:
        """The split on the requested side whose mix with ``anchor`` the model rates best."""
        side = self._cpu < self._cpu[anchor] if shed else self._bytes < self._bytes[anchor]
        candidates = [m for m in range(len(side)) if side[m] and m != anchor]
        if not candidates:
            return None
        rates = {m: self._mix_rate(anchor, m, self._balance(anchor, m)) for m in candidates}
        best = max(rates.values())
        # ties (within round-off) go to the nearest split: fewest proxies change
        return min(
            (m for m in candidates if rates[m] >= best * (1 - 1e-9)), key=lambda m: abs(m - anchor)
        )

    def _mix_rate(self, i: int, j: int, t: float) -> float:
        cpu_budget, bandwidth = self._budget
        cpu = (1 - t) * self._cpu[i] + t * self._cpu[j]
        nbytes = (1 - t) * self._bytes[i] + t * self._bytes[j]
        return sustained_rate(1, cpu, nbytes, cpu_budget, bandwidth)

    def _balance(self, i: int, j: int) -> float:
        """The model's best weight on split ``j`` in a mix with split ``i``: where CPU and
        network run out together, if that lies on the edge, else the better end."""
        cpu_budget, bandwidth = self._budget
        d_cpu, d_bytes = self._cpu[j] - self._cpu[i], self._bytes[j] - self._bytes[i]
        candidates = [0.0, 1.0]
        denominator = cpu_budget * d_bytes - bandwidth * d_cpu
        if denominator != 0:
            t = (bandwidth * self._cpu[i] - cpu_budget * self._bytes[i]) / denominator
            if 0 < t < 1:
                candidates.append(float(t))
        return max(candidates, key=lambda t: (self._mix_rate(i, j, t), -t))


def _key(factors: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(round(p, 4) for p in factors)
