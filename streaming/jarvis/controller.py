"""The source model (profile, cost per plan, LP, best operator-level split) and queue states.

Model (per *input* record of the source; operators ``k = 0..K-1``):

* ``S_k`` records reach stage ``k`` (``S_0 = 1``, ``S_{k+1} = S_k * selectivity_k``);
* ``a_k`` is the fraction of input whose data operator ``k`` processes locally, so the proxy
  load factors are ``p_k = a_k / a_{k-1}`` (``a_{-1} = 1``) and the *ordering constraint*
  ``1 >= a_0 >= a_1 >= ... >= a_{K-1} >= 0`` holds: an operator can only process locally what
  the previous one processed locally;
* CPU seconds per input record: ``c_in + sum_k cost_k * S_k * a_k + ship * bytes``;
* bytes shipped per input record: ``sum_k (a_{k-1} - a_k) * S_k * b_k + a_{K-1} * S_K * b_K``.

Both are linear in ``a``. With ``z_k = R * a_k`` for an input rate ``R`` the problem
"maximise ``R`` subject to CPU <= budget, bytes <= bandwidth, ordering" is a linear
program (scipy ``linprog``/HiGHS). Among the rate-maximising solutions a second LP picks the
one that ships the fewest bytes, i.e. processes as much as possible near the data.

The model is only as good as the profile, which drifts (other processes, cache effects,
batch sizes), so a source does not simply apply the LP's answer: the search in
:mod:`streaming.jarvis.search` starts from the best *operator-level* split this model
predicts (:func:`best_operator_level`) and refines data-level factors from measured queue
states (:func:`classify`, :class:`StepHeuristic`). The LP stays as the model's data-level
optimum: what the search could reach if the profile were exact.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

__all__ = [
    "IntervalObservation",
    "LoadPlan",
    "OperatorProfile",
    "QueryProfile",
    "QueueState",
    "StepHeuristic",
    "best_operator_level",
    "classify",
    "cumulative",
    "factors_from_cumulative",
    "operator_level_factors",
    "plan_cost",
    "solve_load_factors",
]


@dataclass(frozen=True)
class OperatorProfile:
    """Measured behaviour of one operator at a source."""

    cost_s: float  # CPU seconds per input record of this operator
    selectivity: float  # output records per input record

    def __post_init__(self) -> None:
        if not (self.cost_s >= 0 and self.selectivity >= 0):
            raise ValueError(f"operator profile needs cost_s >= 0 and selectivity >= 0: {self}")


@dataclass(frozen=True)
class QueryProfile:
    """Per-operator profiles plus shipping costs of each stage."""

    operators: tuple[OperatorProfile, ...]
    stage_bytes: tuple[float, ...]  # bytes per record shipped at stage k, k = 0..K
    ship_cost_s_per_byte: float = 0.0  # serialisation + write CPU
    input_cost_s: float = 0.0  # CPU per input record spent whatever the plan (reading it)

    def __post_init__(self) -> None:
        if len(self.stage_bytes) != len(self.operators) + 1:
            raise ValueError(
                f"stage_bytes needs {len(self.operators) + 1} entries (stages 0..K), "
                f"got {len(self.stage_bytes)}"
            )
        if min(self.stage_bytes, default=0) < 0 or self.ship_cost_s_per_byte < 0:
            raise ValueError("stage_bytes and ship_cost_s_per_byte must be >= 0")

    @property
    def reach(self) -> np.ndarray:
        """``S_k`` for k = 0..K: records reaching stage k per input record."""
        s = [1.0]
        for op in self.operators:
            s.append(s[-1] * op.selectivity)
        return np.asarray(s)


def cumulative(load_factors: Sequence[float]) -> np.ndarray:
    """``a_k = p_0 * ... * p_k``."""
    return np.cumprod(np.asarray(load_factors, dtype=float))


def factors_from_cumulative(a: Sequence[float]) -> tuple[float, ...]:
    """Invert :func:`cumulative`; a proxy nothing reaches gets ``p = 0``."""
    out, prev = [], 1.0
    for value in a:
        p = 0.0 if prev <= 1e-12 else min(1.0, max(0.0, value / prev))
        p = 0.0 if p < 1e-6 else 1.0 if p > 1 - 1e-6 else float(p)  # LP round-off
        out.append(p)
        prev = value
    return tuple(out)


def _coefficients(profile: QueryProfile) -> tuple[np.ndarray, float, np.ndarray, float]:
    """Bytes and CPU per input record as ``const + coef @ a``."""
    reach = profile.reach
    b = np.asarray(profile.stage_bytes, dtype=float)
    k = len(profile.operators)
    bytes_const = reach[0] * b[0]
    bytes_coef = np.zeros(k)
    for i in range(k):
        # a_i moves records from "forwarded at stage i" to "forwarded at stage i+1"
        bytes_coef[i] = reach[i + 1] * b[i + 1] - reach[i] * b[i]
    cpu_coef = np.array([op.cost_s for op in profile.operators]) * reach[:k]
    cpu_coef = cpu_coef + profile.ship_cost_s_per_byte * bytes_coef
    cpu_const = profile.input_cost_s + profile.ship_cost_s_per_byte * bytes_const
    return bytes_coef, bytes_const, cpu_coef, cpu_const


def plan_cost(profile: QueryProfile, load_factors: Sequence[float]) -> tuple[float, float]:
    """``(cpu_seconds, bytes)`` per input record under these load factors."""
    bytes_coef, bytes_const, cpu_coef, cpu_const = _coefficients(profile)
    a = cumulative(load_factors)
    return float(cpu_const + cpu_coef @ a), float(bytes_const + bytes_coef @ a)


def _rate(profile: QueryProfile, factors, cpu_budget, bandwidth, max_rate) -> float:
    cpu, nbytes = plan_cost(profile, factors)
    limits = [max_rate]
    if cpu > 0:
        limits.append(cpu_budget / cpu)
    if nbytes > 0:
        limits.append(bandwidth / nbytes)
    return float(min(limits))


@dataclass(frozen=True)
class LoadPlan:
    """Load factors and what the model predicts for them."""

    load_factors: tuple[float, ...]
    rate: float  # input records per second the source can sustain
    cpu_s_per_record: float
    bytes_per_record: float


def solve_load_factors(
    profile: QueryProfile,
    cpu_budget: float,
    bandwidth: float,
    max_rate: float | None = None,
) -> LoadPlan:
    """The LP: load factors maximising the sustainable input rate, then minimising bytes.

    ``cpu_budget`` is in CPU seconds per second (fraction of one core), ``bandwidth`` in
    bytes per second, ``max_rate`` the input rate (None = as much as the resources allow).
    """
    if not cpu_budget > 0 or not bandwidth > 0:
        raise ValueError(f"cpu_budget={cpu_budget} and bandwidth={bandwidth} must be positive")
    k = len(profile.operators)
    bytes_coef, bytes_const, cpu_coef, cpu_const = _coefficients(profile)
    cap = float(max_rate) if max_rate is not None else 1e12
    # variables x = [R, z_0 .. z_{K-1}], z_i = R * a_i; rows normalised to right-hand side 1
    cpu_row = np.array([cpu_const, *cpu_coef]) / cpu_budget
    byte_row = np.array([bytes_const, *bytes_coef]) / bandwidth
    # rates are ~1e6 and costs ~1e-8: solve for y = x * scale so every coefficient is O(1)
    scale = max(np.abs(cpu_row).sum(), np.abs(byte_row).sum(), 1.0 / cap)
    rows = [cpu_row / scale, byte_row / scale]
    for i in range(k):  # ordering: z_i <= z_{i-1} (z_{-1} = R)
        row = np.zeros(k + 1)
        row[i + 1], row[i] = 1.0, -1.0
        rows.append(row)
    a_ub = np.vstack(rows)
    b_ub = np.array([1.0, 1.0] + [0.0] * k)
    y_cap = cap * scale
    first = linprog(
        c=[-1.0] + [0.0] * k,
        A_ub=a_ub,
        b_ub=b_ub,
        bounds=[(0.0, y_cap)] + [(0.0, None)] * k,
        method="highs",
    )
    if not first.success:
        raise RuntimeError(f"load-factor LP failed: {first.message}")
    best = float(first.x[0])
    if best <= 0:
        return LoadPlan(tuple([0.0] * k), 0.0, *plan_cost(profile, [0.0] * k))
    # second LP: keep the rate (to 1e-7 relative), ship as few bytes as possible
    bounds = [(best * (1 - 1e-7), y_cap)] + [(0.0, None)] * k
    y = first.x
    second = linprog(c=byte_row / scale, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
    if second.success:
        y = second.x
        # third LP: among those, the least CPU (no local work that saves no bytes)
        third = linprog(
            c=cpu_row / scale,
            A_ub=np.vstack([a_ub, byte_row / scale]),
            b_ub=np.append(b_ub, float(second.fun) + 1e-7 * abs(float(second.fun)) + 1e-12),
            bounds=bounds,
            method="highs",
        )
        if third.success:
            y = third.x
    a = np.clip(y[1:] / y[0], 0.0, 1.0)
    a = np.minimum.accumulate(a)  # remove round-off that would break ordering
    factors = factors_from_cumulative(a)
    # the rate these exact factors sustain (never above what the constraints allow)
    rate = _rate(profile, factors, cpu_budget, bandwidth, cap)
    cpu, nbytes = plan_cost(profile, factors)
    # Every whole-operator split is a feasible point of this LP, so the optimum is never worse;
    # with extreme coefficients HiGHS' feasibility tolerance can still leave the recomputed rate
    # a hair below one of them — then that split is the better plan and is returned instead.
    operator_level = best_operator_level(profile, cpu_budget, bandwidth, max_rate)
    if operator_level.rate > rate * (1 + 1e-9):
        return operator_level
    return LoadPlan(factors, rate, cpu, nbytes)


def operator_level_factors(num_operators: int, split: int) -> tuple[float, ...]:
    """Load factors of operator-level split ``split``: operators ``0..split-1`` at the source
    on all their records, the rest in Spark (split 0 = all at Spark, split K = all local)."""
    if not 0 <= split <= num_operators:
        raise ValueError(f"split {split} is outside 0..{num_operators}")
    return tuple([1.0] * split + [0.0] * (num_operators - split))


def best_operator_level(
    profile: QueryProfile,
    cpu_budget: float,
    bandwidth: float,
    max_rate: float | None = None,
) -> LoadPlan:
    """The best *whole-operator* split: operators ``0..m-1`` at the source, the rest in Spark
    (ties go to the split with fewer operators at the source)."""
    k = len(profile.operators)
    cap = float(max_rate) if max_rate is not None else 1e12
    best: LoadPlan | None = None
    for m in range(k + 1):
        factors = operator_level_factors(k, m)
        rate = _rate(profile, factors, cpu_budget, bandwidth, cap)
        if best is None or rate > best.rate * (1 + 1e-9):
            best = LoadPlan(factors, rate, *plan_cost(profile, factors))
    assert best is not None
    return best


class QueueState(enum.Enum):
    IDLE = "idle"
    STABLE = "stable"
    CONGESTED = "congested"


@dataclass(frozen=True)
class IntervalObservation:
    """What a source saw in one control interval."""

    cpu_used_s: float
    cpu_budget_s: float
    bytes_sent: float
    byte_budget: float
    stopped_by: str  # "cpu" | "network" | "input" | "time"


def classify(obs: IntervalObservation, slack: float = 0.1) -> QueueState:
    """Queue state of the local proxies in one interval.

    Congested: local work queued up because the CPU budget ran out while the network still
    had room. Idle: the CPU budget was not used up because the network (or the input) was the
    limit. Anything else (both resources near their limits, or neither) is stable.
    """
    cpu_spare = obs.cpu_used_s < (1 - slack) * obs.cpu_budget_s
    net_spare = obs.bytes_sent < (1 - slack) * obs.byte_budget
    if obs.stopped_by == "cpu" and net_spare:
        return QueueState.CONGESTED
    if obs.stopped_by in ("network", "input") and cpu_spare:
        return QueueState.IDLE
    return QueueState.STABLE


class StepHeuristic:
    """Which way and how far to move, from successive queue states (model-agnostic).

    :meth:`move` returns a signed step: positive sheds local work (*congested*: the CPU budget
    ran out while the network had room), negative takes on local work (*idle*: CPU was left
    over because the network or the input was the limit), zero keeps the plan (*stable*). The
    step doubles while the same state repeats, so it crosses a long way in a few intervals,
    until the direction first flips; from then on it halves at each flip and never grows
    again (bracketing, then bisection: growing after a flip makes a limit cycle). *What* is
    moved is the caller's choice (:class:`streaming.jarvis.search.LoadSearch` moves along the
    edge between two operator-level splits).
    """

    def __init__(self, step: float = 0.1, min_step: float = 0.02, max_step: float = 0.4) -> None:
        if not 0 < min_step <= step <= max_step <= 1:
            raise ValueError("need 0 < min_step <= step <= max_step <= 1")
        self.initial_step = step
        self.min_step, self.max_step = min_step, max_step
        self.reset()

    def reset(self) -> None:
        """Forget the step history (a new search starts)."""
        self.step = self.initial_step
        self._last: QueueState | None = None
        self._bracketed = False  # the direction flipped once: the balance point lies behind

    def move(self, state: QueueState) -> float:
        if state is QueueState.STABLE:
            self._last = state
            return 0.0
        if self._last in (QueueState.CONGESTED, QueueState.IDLE) and self._last is not state:
            self.step = max(self.min_step, self.step / 2)  # direction flipped: bisect
            self._bracketed = True
        elif self._last is state and not self._bracketed:
            self.step = min(self.max_step, self.step * 2)  # not there yet: speed up
        self._last = state
        return self.step if state is QueueState.CONGESTED else -self.step
