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
- Growth: two scikit-learn ``LinearRegression`` fits of the normalised mean against the
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

import math
from collections import defaultdict
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


def _linear_regression():
    """scikit-learn's ``LinearRegression``, imported on first fit: importing scikit-learn
    takes seconds, and the cache manager imports this module while a SparkContext starts
    (``spark.blaze.enabled=true``) but fits nothing until partitions have been measured."""
    from sklearn.linear_model import LinearRegression

    return LinearRegression


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
    model = _linear_regression()().fit(x.reshape(-1, 1), y)
    return float(model.intercept_), float(model.coef_[0])


def _scale_exponent(iters: np.ndarray, scales: np.ndarray, values: np.ndarray) -> float:
    if len(np.unique(scales)) < 2 or np.any(values <= 0):
        return 1.0
    features = np.column_stack([iters, np.log(scales)])
    model = _linear_regression()().fit(features, np.log(values))
    return float(np.clip(model.coef_[1], 0.0, 2.0))


def _fit_kind(kind: str, iters: np.ndarray, z: np.ndarray, c: float) -> GrowthFit:
    if kind == "last":
        return GrowthFit("last", float(z[-1]), 0.0, c)
    if kind == "geometric":
        a, b = _line(iters, np.log(z))
    else:
        a, b = _line(iters, z)
    return GrowthFit(kind, a, b, c)


def fit_time_vs_size(sizes: Sequence[float], times: Sequence[float]) -> GrowthFit:
    """Compute time as fixed overhead + work per byte: ``t = a + b x size`` (a, b >= 0).

    Used once two input scales were seen: a task's fixed cost does not shrink with a sampled
    input, so a power law in the scale would over-predict the full run's time.
    """
    x = np.asarray(sizes, dtype=float).reshape(-1, 1)
    y = np.asarray(times, dtype=float)
    model = _linear_regression()(positive=True).fit(x, y)
    a, b = float(model.intercept_), float(model.coef_[0])
    if a < 0:  # no overhead visible: a line through the origin
        model = _linear_regression()(positive=True, fit_intercept=False).fit(x, y)
        a, b = 0.0, float(model.coef_[0])
    return GrowthFit("affine_size", a, b, 1.0)


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
    errors = {}
    for kind in kinds:
        errs = []
        for k in range(2, len(z)):  # rolling origin: predict point k from points < k
            fit = _fit_kind(kind, it[:k], z[:k], 1.0)
            errs.append(abs(fit(it[k], 1.0) - z[k]) / max(abs(z[k]), 1e-12))
        errors[kind] = float(np.median(errs)) if errs else 0.0
    best = min(kinds, key=lambda k: (errors[k], kinds.index(k)))
    return _fit_kind(best, it, z, c)


@dataclass
class DatasetPredictor:
    """Observations and fits of one logical dataset."""

    key: str
    min_points: int = MIN_POINTS
    # (iteration, scale) -> split -> (size, compute or None)
    points: dict[tuple[int, float], dict[int, tuple[float, float | None]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    _fits: dict[int | None, tuple[GrowthFit, GrowthFit | None]] = field(default_factory=dict)

    def observe(
        self, iteration: int, split: int, size_bytes: float, compute_ms: float | None, scale=1.0
    ) -> None:
        self.points[(int(iteration), float(scale))][int(split)] = (
            float(size_bytes),
            None if compute_ms is None else float(compute_ms),
        )
        # fits made from iterations before this one stay valid
        for before in [b for b in self._fits if b is None or b > iteration]:
            del self._fits[before]

    @property
    def iterations(self) -> list[int]:
        return sorted({i for i, _ in self.points})

    def _means(self, before: int | None):
        rows = []
        for (iteration, scale), parts in sorted(self.points.items()):
            if before is not None and iteration >= before:
                continue
            sizes = [s for s, _ in parts.values()]
            times = [t for _, t in parts.values() if t is not None]
            rows.append((iteration, scale, float(np.mean(sizes)), times))
        return rows

    def fits(self, before: int | None = None) -> tuple[GrowthFit, GrowthFit | None] | None:
        """(size fit, time fit) from iterations < ``before`` (all if None)."""
        if before in self._fits:
            return self._fits[before]
        rows = self._means(before)
        if not rows:
            return None
        size_fit = fit_growth(
            [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], self.min_points
        )
        timed = [r for r in rows if r[3]]
        time_fit = None
        if len({r[1] for r in timed}) >= 2:
            time_fit = fit_time_vs_size(
                [r[2] for r in timed], [float(np.mean(r[3])) for r in timed]
            )
        elif timed:
            time_fit = fit_growth(
                [r[0] for r in timed],
                [r[1] for r in timed],
                [float(np.mean(r[3])) for r in timed],
                self.min_points,
            )
        self._fits[before] = (size_fit, time_fit)
        return self._fits[before]

    def _shares(self, split: int, before: int | None) -> tuple[float, float]:
        """The split's size and time relative to its iteration's mean (skew), averaged over
        the last ``SHARE_WINDOW`` iterations it was seen in: skew persists, noise averages out."""
        size_shares: list[float] = []
        time_shares: list[float] = []
        for (iteration, _), parts in sorted(self.points.items(), reverse=True):
            if before is not None and iteration >= before:
                continue
            if split not in parts:
                continue
            size, time = parts[split]
            mean_size = float(np.mean([s for s, _ in parts.values()]))
            if mean_size > 0:
                size_shares.append(size / mean_size)
            times = [t for _, t in parts.values() if t is not None]
            if time is not None and times and np.mean(times) > 0:
                time_shares.append(time / float(np.mean(times)))
            if len(size_shares) >= SHARE_WINDOW:
                break
        return (
            float(np.mean(size_shares)) if size_shares else 1.0,
            float(np.mean(time_shares)) if time_shares else 1.0,
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
        self.errors: list[_ErrorRecord] = []
        self._rdd_index: dict[int, tuple[str, int]] = {}  # rdd id -> (dataset, iteration)
        self._members: dict[str, list[int]] = defaultdict(list)

    def dataset(self, key: str) -> DatasetPredictor:
        if key not in self.datasets:
            self.datasets[key] = DatasetPredictor(key, self.min_points)
        return self.datasets[key]

    def register_rdd(self, rdd_id: int, key: str) -> tuple[str, int]:
        """Assign the RDD to a dataset; its iteration is its rank among the dataset's RDDs."""
        if rdd_id in self._rdd_index:
            return self._rdd_index[rdd_id]
        members = self._members[key]
        members.append(rdd_id)
        members.sort()
        for index, member in enumerate(members):  # ids grow with time: rank = iteration
            self._rdd_index[member] = (key, index)
        return self._rdd_index[rdd_id]

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
        """Median relative errors of the predictions scored so far, overall and per dataset."""

        def summary(records: list[_ErrorRecord]) -> dict:
            sizes = [e for r in records if (e := r.size_error) is not None]
            times = [e for r in records if (e := r.time_error) is not None]
            return {
                "predictions": len(records),
                "median_size_error": float(np.median(sizes)) if sizes else None,
                "median_time_error": float(np.median(times)) if times else None,
            }

        by_dataset: dict[str, list[_ErrorRecord]] = defaultdict(list)
        for record in self.errors:
            by_dataset[record.dataset].append(record)
        return {
            "overall": summary(self.errors),
            "datasets": {key: summary(records) for key, records in sorted(by_dataset.items())},
        }

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        datasets = {}
        for key, predictor in sorted(self.datasets.items()):
            fitted = predictor.fits()
            datasets[key] = {
                "points": [
                    {"iteration": i, "scale": s, "split": split, "size": v[0], "ms": v[1]}
                    for (i, s), parts in sorted(predictor.points.items())
                    for split, v in sorted(parts.items())
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
