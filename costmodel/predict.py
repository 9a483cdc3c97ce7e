"""Predict partition sizes and compute times of the next iterations and of the full input.

The authors matched an RDD of iteration i+1 to the same-callSite RDD of iteration i and copied
its size and time (nearest neighbour). Iterative jobs whose data grow or shrink (GraphX,
MLlib) make that copy wrong by the growth factor every iteration; here each logical dataset
gets regressors over (iteration, input scale), so growth is extrapolated:

- A *logical dataset* is the set of RDDs with the same call site and the same parent shape
  (the call sites of its parents) — one step of the program, repeated per iteration; its
  *iteration* is the order in which its RDDs appeared (0, 1, 2, ...).
- Per iteration the mean partition size and compute time are modelled; a partition's
  prediction is that mean times its share in the latest iteration it was seen (skew).
- Input scale: a profile from sampled input (scale 0.01) must predict the full run (1.0).
  The target is normalised by ``scale ** c``; ``c`` is fitted by a log-log regression when two
  or more scales were seen, else 1 (partition data grow with the input at a fixed number of
  partitions).
- Growth: two least-squares line fits of the normalised mean against the
  iteration — linear (``z = a + b i``) and geometric (``log z = a + b i``) — and the last
  value compete; the one with the lower error in a rolling-origin backtest (predict iteration
  k from iterations < k) wins.
- Fewer than ``min_points`` iterations: the last observation, rescaled to the asked scale.
- Compute time, once two input scales were seen: ``overhead + per-byte work x predicted size``
  (non-negative least squares), because a task's fixed cost does not shrink with the sample.

Every observation of an iteration for which earlier iterations exist is first predicted from
those earlier iterations, and the relative error is recorded (``error_report``), so the run
reports how good its predictions were as it goes.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from costmodel.cost import Estimate
from costmodel.types import RddSpec

__all__ = [
    "DatasetPredictor",
    "GrowthFit",
    "Prediction",
    "Predictors",
    "dataset_key",
]

MIN_POINTS = 3
SHARE_WINDOW = 5
HISTORY = 32  # iterations kept per dataset and input scale
MEMBER_WINDOW = 2 * HISTORY  # newest RDDs of a dataset whose iteration number is kept
ERROR_WINDOW = 4096  # newest scored predictions the error report's medians are taken over


def dataset_key(call_site: str, parent_call_sites: Sequence[str] = ()) -> str:
    """The logical dataset an RDD belongs to: its call site and its parents' call sites."""
    return call_site + " <- " + " | ".join(sorted(parent_call_sites))


@dataclass(frozen=True)
class Prediction:
    size_bytes: float
    compute_ms: float
    method: str  # "last", "linear" or "geometric"


@dataclass(frozen=True)
class GrowthFit:
    """One quantity of one dataset: ``y = scale**c * g(iteration)``.

    ``kind`` "linear": g(i) = a + b i (floored at 0); "geometric": g(i) = exp(a + b i);
    "last": g = a (the last observation normalised by its scale); "affine_size" (compute
    time only): ``a + b x predicted mean size``, evaluated by :class:`DatasetPredictor`.
    """

    kind: str
    a: float
    b: float = 0.0
    c: float = 1.0

    def __call__(self, iteration: float, scale: float) -> float:
        factor = scale**self.c if scale > 0 else 0.0
        if self.kind == "geometric":
            return factor * math.exp(min(self.a + self.b * iteration, 700.0))
        if self.kind == "linear":
            return factor * max(self.a + self.b * iteration, 0.0)
        return factor * self.a

    def as_dict(self) -> dict[str, float | str]:
        return {"kind": self.kind, "a": self.a, "b": self.b, "c": self.c}

    @classmethod
    def from_dict(cls, data: Mapping) -> GrowthFit:
        kind = str(data["kind"])
        if kind not in ("linear", "geometric", "last", "affine_size"):
            raise ValueError(f"unknown growth model kind {kind!r}")
        return cls(kind, float(data["a"]), float(data.get("b", 0.0)), float(data.get("c", 1.0)))


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Ordinary least squares ``y = a + b x`` (b = 0 when every x is equal).

    Closed form rather than scikit-learn's ``LinearRegression``: the manager refits a site
    every time one of its datasets gets a new iteration, and the estimator's input checks cost
    ~0.3 ms a fit, which a program of thousands of short jobs pays thousands of times.
    """
    intercepts, slopes = _prefix_lines(x, y)
    return float(intercepts[-1]), float(slopes[-1])


def _prefix_lines(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The least-squares line through the first k points, for every k = 1..n, at once
    (prefix sums of x, y, xy, x²): the rolling-origin backtest needs one fit per prefix."""
    n = np.arange(1, len(x) + 1, dtype=float)
    sx, sy = np.cumsum(x), np.cumsum(y)
    sxx, sxy = np.cumsum(x * x), np.cumsum(x * y)
    spread = n * sxx - sx * sx
    flat = spread <= 1e-9 * np.maximum(n * sxx, 1.0)
    slopes = np.where(flat, 0.0, (n * sxy - sx * sy) / np.where(flat, 1.0, spread))
    return (sy - slopes * sx) / n, slopes


def _scale_exponent(iters: np.ndarray, scales: np.ndarray, values: np.ndarray) -> float:
    if len(np.unique(scales)) < 2 or np.any(values <= 0):
        return 1.0
    features = np.column_stack([np.ones_like(iters), iters, np.log(scales)])
    coef, *_ = np.linalg.lstsq(features, np.log(values), rcond=None)
    return float(np.clip(coef[2], 0.0, 2.0))


def _fit_kind(kind: str, iters: np.ndarray, z: np.ndarray, c: float) -> GrowthFit:
    if kind == "last":
        return GrowthFit("last", float(z[-1]), 0.0, c)
    if kind == "geometric":
        a, b = _line(iters, np.log(z))
    else:
        a, b = _line(iters, z)
    return GrowthFit(kind, a, b, c)


def _backtest_error(kind: str, it: np.ndarray, z: np.ndarray) -> float:
    """Median relative error of predicting point k from points < k (k = 2..n-1)."""
    targets = z[2:]
    if len(targets) == 0:
        return 0.0
    if kind == "last":
        guesses = z[1:-1]
    elif kind == "geometric":
        a, b = _prefix_lines(it, np.log(z))
        guesses = np.exp(np.minimum(a[1:-1] + b[1:-1] * it[2:], 700.0))
    else:
        a, b = _prefix_lines(it, z)
        guesses = np.maximum(a[1:-1] + b[1:-1] * it[2:], 0.0)
    return float(np.median(np.abs(guesses - targets) / np.maximum(np.abs(targets), 1e-12)))


def fit_time_vs_size(sizes: Sequence[float], times: Sequence[float]) -> GrowthFit:
    """Compute time as fixed overhead + work per byte: ``t = a + b x size`` (a, b >= 0).

    Used once two input scales were seen: a task's fixed cost does not shrink with a sampled
    input, so a power law in the scale would over-predict the full run's time. Non-negative
    least squares (SciPy's ``nnls``) keeps both terms physical.
    """
    from scipy.optimize import nnls

    x = np.asarray(sizes, dtype=float)
    y = np.asarray(times, dtype=float)
    (a, b), _ = nnls(np.column_stack([np.ones_like(x), x]), y)
    return GrowthFit("affine_size", float(a), float(b), 1.0)


def fit_growth(
    iters: Sequence[float],
    scales: Sequence[float],
    values: Sequence[float],
    min_points: int = MIN_POINTS,
) -> GrowthFit:
    """Fit one quantity; points are (iteration, scale, value) with value >= 0."""
    it = np.asarray(iters, dtype=float)
    sc = np.asarray(scales, dtype=float)
    y = np.asarray(values, dtype=float)
    if len(y) == 0:
        raise ValueError("fit_growth needs at least one point")
    c = _scale_exponent(it, sc, y)
    z = y / np.where(sc > 0, sc, 1.0) ** c
    order = np.argsort(it, kind="stable")
    it, z = it[order], z[order]
    if len(np.unique(it)) < min_points:
        return GrowthFit("last", float(z[-1]), 0.0, c)
    # the last value competes too: a flat series with a one-off jump (PageRank's first
    # iteration drops vertices) is better copied than extrapolated
    kinds = ["linear"] + (["geometric"] if np.all(z > 0) else []) + ["last"]
    errors = {kind: _backtest_error(kind, it, z) for kind in kinds}
    best = min(kinds, key=lambda k: (errors[k], kinds.index(k)))
    return _fit_kind(best, it, z, c)


@dataclass
class _IterationPoints:
    """One iteration's measured partitions with running sums, so its means cost O(1)."""

    parts: dict[int, tuple[float, float | None]] = field(default_factory=dict)
    size_sum: float = 0.0
    time_sum: float = 0.0
    timed: int = 0

    def put(self, split: int, size: float, compute_ms: float | None) -> None:
        old = self.parts.get(split)
        if old is not None:
            self.size_sum -= old[0]
            if old[1] is not None:
                self.time_sum -= old[1]
                self.timed -= 1
        self.parts[split] = (size, compute_ms)
        self.size_sum += size
        if compute_ms is not None:
            self.time_sum += compute_ms
            self.timed += 1

    @property
    def mean_size(self) -> float:
        return self.size_sum / len(self.parts)

    @property
    def mean_time(self) -> float | None:
        return self.time_sum / self.timed if self.timed else None


@dataclass
class DatasetPredictor:
    """Observations and fits of one logical dataset.

    Bounded: only the newest ``history`` iterations of each input scale are kept (growth is
    extrapolated from the recent trend; a program of thousands of generations must not make
    every fit dearer than the last), and a fit is recomputed only after an observation
    changed the iterations it is made from.
    """

    key: str
    min_points: int = MIN_POINTS
    history: int = HISTORY
    # (iteration, scale) -> that iteration's partitions, kept in key order
    points: dict[tuple[int, float], _IterationPoints] = field(default_factory=dict)
    _fits: dict[int | None, tuple[GrowthFit, GrowthFit | None]] = field(default_factory=dict)

    def observe(
        self, iteration: int, split: int, size_bytes: float, compute_ms: float | None, scale=1.0
    ) -> None:
        key = (int(iteration), float(scale))
        if key not in self.points:
            self.points[key] = _IterationPoints()
            self.points = dict(sorted(self.points.items()))
            self._trim(key[1])
        self.points[key].put(
            int(split), float(size_bytes), None if compute_ms is None else float(compute_ms)
        )
        # fits made from iterations before this one stay valid; keep only the newest of them
        stale = [b for b in self._fits if b is None or b > iteration]
        kept = [b for b in self._fits if b not in stale]
        for before in stale + sorted(kept)[:-1]:
            del self._fits[before]

    def _trim(self, scale: float) -> None:
        same_scale = [k for k in self.points if k[1] == scale]
        for key in same_scale[: max(len(same_scale) - self.history, 0)]:
            del self.points[key]

    @property
    def iterations(self) -> list[int]:
        return sorted({i for i, _ in self.points})

    def point_count(self) -> int:
        return sum(len(p.parts) for p in self.points.values())

    def fits(self, before: int | None = None) -> tuple[GrowthFit, GrowthFit | None] | None:
        """(size fit, time fit) from iterations < ``before`` (all if None)."""
        if before in self._fits:
            return self._fits[before]
        if (
            before is not None
            and None in self._fits
            and all(iteration < before for iteration, _ in self.points)
        ):
            # every point is older than ``before``: the fit of all of them is that fit (the
            # score of a new iteration's first partition reuses the fit its prediction used)
            self._fits[before] = self._fits[None]
            return self._fits[before]
        rows = [
            (iteration, scale, p.mean_size, p.mean_time)
            for (iteration, scale), p in self.points.items()
            if before is None or iteration < before
        ]
        if not rows:
            return None
        size_fit = fit_growth(
            [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], self.min_points
        )
        timed = [r for r in rows if r[3] is not None]
        time_fit = None
        if len({r[1] for r in timed}) >= 2:
            time_fit = fit_time_vs_size([r[2] for r in timed], [r[3] for r in timed])
        elif timed:
            time_fit = fit_growth(
                [r[0] for r in timed], [r[1] for r in timed], [r[3] for r in timed], self.min_points
            )
        self._fits[before] = (size_fit, time_fit)
        return self._fits[before]

    def _shares(self, split: int, before: int | None) -> tuple[float, float]:
        """The split's size and time relative to its iteration's mean (skew), averaged over
        the last ``SHARE_WINDOW`` iterations it was seen in: skew persists, noise averages out."""
        size_shares: list[float] = []
        time_shares: list[float] = []
        for (iteration, _), points in reversed(self.points.items()):
            if before is not None and iteration >= before:
                continue
            if split not in points.parts:
                continue
            size, time = points.parts[split]
            if points.mean_size > 0:
                size_shares.append(size / points.mean_size)
            mean_time = points.mean_time
            if time is not None and mean_time:
                time_shares.append(time / mean_time)
            if len(size_shares) >= SHARE_WINDOW:
                break
        return (
            sum(size_shares) / len(size_shares) if size_shares else 1.0,
            sum(time_shares) / len(time_shares) if time_shares else 1.0,
        )

    def predict(
        self,
        iteration: int,
        scale: float = 1.0,
        split: int | None = None,
        before: int | None = None,
    ) -> Prediction | None:
        fitted = self.fits(before)
        if fitted is None:
            return None
        size_fit, time_fit = fitted
        size_share, time_share = (1.0, 1.0) if split is None else self._shares(split, before)
        mean_size = size_fit(iteration, scale)
        size = mean_size * size_share
        if time_fit is None:
            time = 0.0
        elif time_fit.kind == "affine_size":
            time = (time_fit.a + time_fit.b * mean_size) * time_share
        else:
            time = time_fit(iteration, scale) * time_share
        return Prediction(max(size, 0.0), max(time, 0.0), size_fit.kind)

    def next_iteration(self) -> int:
        its = self.iterations
        return its[-1] + 1 if its else 0


@dataclass(frozen=True)
class _ErrorRecord:
    dataset: str
    iteration: int
    split: int
    predicted_size: float
    actual_size: float
    predicted_ms: float
    actual_ms: float | None
    method: str

    @property
    def size_error(self) -> float | None:
        if self.actual_size <= 0:
            return None
        return abs(self.predicted_size - self.actual_size) / self.actual_size

    @property
    def time_error(self) -> float | None:
        if self.actual_ms is None or self.actual_ms <= 0:
            return None
        return abs(self.predicted_ms - self.actual_ms) / self.actual_ms


class Predictors:
    """All logical datasets of an application, plus the running error report."""

    def __init__(self, min_points: int = MIN_POINTS) -> None:
        self.min_points = min_points
        self.datasets: dict[str, DatasetPredictor] = {}
        # the newest scored predictions (medians) and how many were scored in all
        self.errors: deque[_ErrorRecord] = deque(maxlen=ERROR_WINDOW)
        self._scored: Counter[str] = Counter()
        self._rdd_index: dict[int, tuple[str, int]] = {}  # rdd id -> (dataset, iteration)
        # each dataset's newest RDD ids, sorted, and how many older ones were let go: an
        # RDD's iteration is its rank among every RDD the dataset ever had
        self._members: dict[str, list[int]] = defaultdict(list)
        self._released: Counter[str] = Counter()

    def dataset(self, key: str) -> DatasetPredictor:
        if key not in self.datasets:
            self.datasets[key] = DatasetPredictor(key, self.min_points)
        return self.datasets[key]

    def point_count(self) -> int:
        """Partitions held over all datasets (bounded by ``HISTORY`` iterations each)."""
        return sum(p.point_count() for p in self.datasets.values()) + len(self._rdd_index)

    def register_rdd(self, rdd_id: int, key: str) -> tuple[str, int]:
        """Assign the RDD to a dataset; its iteration is its rank among the dataset's RDDs."""
        if rdd_id in self._rdd_index:
            return self._rdd_index[rdd_id]
        members = self._members[key]
        position = bisect.bisect_left(members, rdd_id)
        members.insert(position, rdd_id)
        released = self._released[key]
        for index in range(position, len(members)):  # ids grow with time: rank = iteration
            self._rdd_index[members[index]] = (key, released + index)
        while len(members) > MEMBER_WINDOW:
            self._rdd_index.pop(members.pop(0), None)
            self._released[key] += 1
        return self._rdd_index.get(rdd_id, (key, self._released[key] - 1))

    def locate(self, rdd_id: int) -> tuple[str, int] | None:
        return self._rdd_index.get(rdd_id)

    def observe(
        self,
        key: str,
        iteration: int,
        split: int,
        size_bytes: float,
        compute_ms: float | None = None,
        scale: float = 1.0,
    ) -> None:
        """Record one partition; first score the prediction earlier iterations made for it."""
        predictor = self.dataset(key)
        if any(i < iteration for i in predictor.iterations):
            guess = predictor.predict(iteration, scale, split, before=iteration)
            if guess is not None:
                self._scored[key] += 1
                self.errors.append(
                    _ErrorRecord(
                        key,
                        iteration,
                        split,
                        guess.size_bytes,
                        float(size_bytes),
                        guess.compute_ms,
                        compute_ms,
                        guess.method,
                    )
                )
        predictor.observe(iteration, split, size_bytes, compute_ms, scale)

    def observe_rdd(
        self,
        rdd_id: int,
        key: str,
        split: int,
        size_bytes: float,
        compute_ms: float | None = None,
        scale: float = 1.0,
    ) -> None:
        dataset, iteration = self.register_rdd(rdd_id, key)
        self.observe(dataset, iteration, split, size_bytes, compute_ms, scale)

    def predict(
        self, key: str, iteration: int | None = None, scale: float = 1.0, split: int | None = None
    ) -> Prediction | None:
        predictor = self.datasets.get(key)
        if predictor is None:
            return None
        if iteration is None:
            iteration = predictor.next_iteration()
        return predictor.predict(iteration, scale, split)

    def estimator(
        self, key_of: Callable[[RddSpec], str], scale: float = 1.0
    ) -> Callable[[RddSpec, int], Estimate | None]:
        """A :class:`~costmodel.cost.CostModel` estimator: predicted values for unmeasured
        partitions of RDDs whose dataset is known (``key_of`` names an RDD's dataset)."""

        def estimate(spec: RddSpec, split: int) -> Estimate | None:
            key = key_of(spec)
            if key not in self.datasets:
                return None
            _, iteration = self.register_rdd(spec.rdd_id, key)
            guess = self.datasets[key].predict(iteration, scale, split)
            return None if guess is None else Estimate(guess.size_bytes, guess.compute_ms)

        return estimate

    def error_report(self) -> dict:
        """Median relative errors of the newest ``ERROR_WINDOW`` predictions scored, overall
        and per dataset, with how many were scored in all."""

        def summary(records: list[_ErrorRecord], scored: int) -> dict:
            sizes = [e for r in records if (e := r.size_error) is not None]
            times = [e for r in records if (e := r.time_error) is not None]
            return {
                "predictions": scored,
                "median_size_error": float(np.median(sizes)) if sizes else None,
                "median_time_error": float(np.median(times)) if times else None,
            }

        by_dataset: dict[str, list[_ErrorRecord]] = defaultdict(list)
        for record in self.errors:
            by_dataset[record.dataset].append(record)
        return {
            "overall": summary(list(self.errors), sum(self._scored.values())),
            "datasets": {
                key: summary(records, self._scored[key])
                for key, records in sorted(by_dataset.items())
            },
        }

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        datasets = {}
        for key, predictor in sorted(self.datasets.items()):
            fitted = predictor.fits()
            datasets[key] = {
                "points": [
                    {"iteration": i, "scale": s, "split": split, "size": v[0], "ms": v[1]}
                    for (i, s), points in sorted(predictor.points.items())
                    for split, v in sorted(points.parts.items())
                ],
                "size_fit": fitted[0].as_dict() if fitted else None,
                "time_fit": fitted[1].as_dict() if fitted and fitted[1] else None,
            }
        return {
            "min_points": self.min_points,
            "datasets": datasets,
            "errors": self.error_report(),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Predictors:
        bank = cls(int(data.get("min_points", MIN_POINTS)))
        for key, entry in dict(data.get("datasets", {})).items():
            predictor = bank.dataset(str(key))
            for point in entry.get("points", []):
                predictor.observe(
                    int(point["iteration"]),
                    int(point["split"]),
                    float(point["size"]),
                    None if point.get("ms") is None else float(point["ms"]),
                    float(point["scale"]),
                )
            if entry.get("size_fit"):  # keep the recorded fit: the profile's word
                size_fit = GrowthFit.from_dict(entry["size_fit"])
                time_fit = GrowthFit.from_dict(entry["time_fit"]) if entry.get("time_fit") else None
                predictor._fits[None] = (size_fit, time_fit)
        return bank
