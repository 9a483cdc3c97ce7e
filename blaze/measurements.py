"""What the manager learns per site: partition sizes, compute times and the fitted predictors.

Why a part of its own: the same program line makes a new dataset each iteration; sizes and
compute times measured on earlier generations price the partitions of a new one before it is
computed (the engine's estimator), predict the sizes the report compares with Spark's, and go
into a recorded profile. This part owns those tables; the registry names the sites.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from costmodel.cost import CostModel, Estimate
from costmodel.disk import DiskCost
from costmodel.predict import Predictors

__all__ = ["SiteMeasurements"]

COMPUTE_SAMPLES = 64  # compute times kept per site


class SiteMeasurements:
    """Per-site sizes and compute times, and the predictors fitted to them."""

    def __init__(
        self,
        predictors: Predictors,
        disk: DiskCost,
        site_of: Callable[[int], str | None],
        on_error: Callable[[str, Exception], None],
    ) -> None:
        self.predictors = predictors
        self._disk = disk
        self._site_of = site_of
        self._on_error = on_error
        self.compute_ms: dict[str, list[float]] = defaultdict(list)
        self.sizes: dict[str, dict[int, int]] = defaultdict(dict)
        self.observed: dict[int, set[int]] = {}  # rdd id -> splits fed to the predictors

    # ---- measurements in -------------------------------------------------------------------
    def on_stored(self, key: tuple[int, int], site: str, size: int) -> None:
        """A partition of a dataset of ``site`` was stored in memory, ``size`` bytes."""
        self.sizes[site][key[1]] = size
        observed = self.observed.setdefault(key[0], set())
        if key[1] in observed:
            return
        observed.add(key[1])
        try:
            self.predictors.observe_rdd(key[0], site, key[1], size)
        except Exception as exc:
            self._on_error("predict", exc)

    def on_computed(self, site: str, compute_ms: float) -> None:
        samples = self.compute_ms[site]
        samples.append(float(compute_ms))
        del samples[:-COMPUTE_SAMPLES]

    def forget_rdd(self, rdd_id: int) -> None:
        self.observed.pop(rdd_id, None)

    # ---- questions -----------------------------------------------------------------------
    def time_unknown(self, key: tuple[int, int], site: str, model: CostModel) -> bool:
        """No compute time is known for ``key``: not measured, no site sample, no predictor."""
        measured = model.measurements_of(key)
        if measured is not None and measured.compute_ms is not None:
            return False
        return not self.compute_ms.get(site) and site not in self.predictors.datasets

    def estimate(self, spec, split: int, model: CostModel) -> Estimate | None:
        """Size and compute time of a dataset's partition nobody has measured yet.

        The fitted predictor of its site if it has one; else the mean compute time of the
        site's earlier generations; else (nothing known: its first block arrives before the
        task that computed it has ended) a recomputation as dear as two disk round trips, so
        an unknown partition is kept — in memory if it fits, else on disk — never dropped.
        """
        site = self._site_of(spec.rdd_id)
        if site is None:
            return None
        predicted = self._predicted(spec, split, site)
        if predicted is not None:
            return predicted
        measured = model.measurements_of((spec.rdd_id, split))
        size = measured.size_bytes if measured and measured.size_bytes else 0.0
        samples = self.compute_ms.get(site)
        if samples:
            return Estimate(size, sum(samples) / len(samples))
        disk = self._disk
        return Estimate(size, 2.0 * (disk.write_ms(size) + disk.read_ms(size)) + 1.0)

    def _predicted(self, spec, split: int, site: str) -> Estimate | None:
        if site not in self.predictors.datasets:
            return None
        _, iteration = self.predictors.register_rdd(spec.rdd_id, site)
        guess = self.predictors.datasets[site].predict(iteration, 1.0, split)
        if guess is None or not guess.compute_ms > 0:  # no time fitted: not an estimate of R
            return None
        return Estimate(guess.size_bytes, guess.compute_ms)

    def predicted_sizes(self, rdd_id: int, site: str) -> dict[int, float]:
        """Each partition size predicted for a new dataset of ``site``, by split: the
        ``costmodel.predict`` regressions over earlier datasets of the same site (the last
        size until it has enough points)."""
        try:
            self.predictors.register_rdd(rdd_id, site)
            result = {}
            for split, last_size in self.sizes.get(site, {}).items():
                guess = self.predictors.predict(site, split=split)
                result[split] = guess.size_bytes if guess is not None else last_size
            return result
        except Exception as exc:
            self._on_error("predict", exc)
            return {}

    def profile_sites(self, sites: dict) -> dict:
        """``sites`` (the tracker's profile) with each site's mean partition size and time."""
        for site, sizes in self.sizes.items():
            if site in sites and sizes:
                sites[site]["partition_bytes"] = sum(sizes.values()) / len(sizes)
        for site, samples in self.compute_ms.items():
            if site in sites and samples:
                sites[site]["compute_ms"] = sum(samples) / len(samples)
        return sites
