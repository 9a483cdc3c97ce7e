"""Compare two results of the same job: Spark vs DuckDB, or a policy's run vs ``none``.

A cache policy must never change a job's answer, so any mismatch is a failure, reported
as one line per differing quantity. Tolerances are relative and tight (1e-6): the only
legitimate differences are floating-point summation orders.
"""

from __future__ import annotations

import numpy as np

from jobs.result import JobResult

__all__ = ["RTOL", "compare"]

RTOL = 1e-6
ATOL = 1e-9


def compare(got: JobResult, want: JobResult, *, what: str = "reference") -> list[str]:
    """Differences of ``got`` from ``want`` on every quantity both hold (empty = agree)."""
    problems = []
    if got.job != want.job:
        return [f"comparing {got.job} with {want.job}"]
    for name in sorted(set(got.arrays) & set(want.arrays)):
        a, b = np.asarray(got.arrays[name]), np.asarray(want.arrays[name])
        if a.shape != b.shape:
            problems.append(f"{got.job}: {name} has shape {a.shape}, {what} has {b.shape}")
        elif a.dtype.kind in "iu" and b.dtype.kind in "iu":
            bad = int(np.count_nonzero(a != b))
            if bad:
                problems.append(f"{got.job}: {name} differs from {what} in {bad} of {a.size}")
        elif not np.allclose(a, b, rtol=RTOL, atol=ATOL):
            worst = float(np.max(np.abs(a - b)))
            problems.append(f"{got.job}: {name} differs from {what} (max abs diff {worst:.3g})")
    for name in sorted(set(got.summary) & set(want.summary)):
        a, b = got.summary[name], want.summary[name]
        if not np.isclose(a, b, rtol=RTOL, atol=ATOL):
            problems.append(f"{got.job}: {name}={a!r} but {what} gives {b!r}")
    return problems
