"""What a job run returns: the numbers verification compares, plus per-iteration timings.

Kept free of Spark so the DuckDB references, the runner and the tests share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["JobResult"]


@dataclass
class JobResult:
    """``arrays`` are compared element-wise (ids first, aligned); ``summary`` holds scalars."""

    job: str
    iterations: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict[str, float] = field(default_factory=dict)
    iteration_seconds: list[float] = field(default_factory=list)

    def save(self, path: str | Path) -> None:
        """Arrays and scalars in one ``.npz`` (the run's JSON stays small)."""
        scalars = {f"summary.{k}": np.float64(v) for k, v in self.summary.items()}
        np.savez(
            path,
            **{f"array.{k}": v for k, v in self.arrays.items()},
            **scalars,
            iterations=np.int64(self.iterations),
            job=np.array(self.job),
        )

    @classmethod
    def load(cls, path: str | Path) -> JobResult:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k[6:]: data[k] for k in data.files if k.startswith("array.")}
            summary = {k[8:]: float(data[k]) for k in data.files if k.startswith("summary.")}
            return cls(str(data["job"]), int(data["iterations"]), arrays, summary)
