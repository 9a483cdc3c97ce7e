"""AOMG (ICDE 2020): accurate quantiles of telemetry values over windows, in value space.

* :mod:`streaming.aomg.summary` — the density-aware, exactly mergeable sub-window summary
  (error guarantee in its docstring);
* :mod:`streaming.aomg.windows` — two-level windows made of whole sub-windows;
* :mod:`streaming.aomg.operator` — ``window_quantiles`` (streaming or batch DataFrames) and
  ``window_quantiles_batch``;
* :mod:`streaming.aomg.native` — the same summaries built by Spark's own aggregation (the
  operator's default method).

The operator functions are imported lazily so the pure-Python summary never pulls in PySpark.
"""

from __future__ import annotations

from streaming.aomg.summary import QuantileSummary, SummaryConfig, exact_quantiles
from streaming.aomg.windows import WindowSpec

__all__ = [
    "QuantileSummary",
    "SummaryConfig",
    "WindowSpec",
    "exact_quantiles",
    "window_quantiles",
    "window_quantiles_batch",
]


def __getattr__(name: str):
    if name in ("window_quantiles", "window_quantiles_batch"):
        from streaming.aomg import operator

        return getattr(operator, name)
    raise AttributeError(f"module 'streaming.aomg' has no attribute {name!r}")
