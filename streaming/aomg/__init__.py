"""AOMG (ICDE 2020): accurate quantiles of telemetry values over windows, in value space.

* :mod:`streaming.aomg.summary` — the density-aware, exactly mergeable summary and its bytes
  (the pure-Python reference; error guarantee in its docstring);
* :mod:`streaming.aomg.functions` — the same summary as Spark SQL functions in the JVM
  (``aomg_summary_agg`` → ``aomg_summary_merge`` → ``aomg_quantile(s)``): :func:`register`
  puts them on a session started with :func:`with_aomg_jar`;
* :mod:`streaming.aomg.windows` — two-level windows made of whole sub-windows;
* :mod:`streaming.aomg.operator` — ``window_quantiles`` / ``window_summaries`` (streaming or
  batch DataFrames), a thin layer over the SQL functions.

The Spark-facing names are imported lazily so the pure-Python summary never pulls in PySpark.
"""

from __future__ import annotations

from streaming.aomg.summary import QuantileSummary, SummaryConfig, exact_quantiles
from streaming.aomg.windows import WindowSpec

__all__ = [
    "QuantileSummary",
    "SummaryConfig",
    "WindowSpec",
    "errors",
    "exact_quantiles",
    "register",
    "window_quantiles",
    "window_quantiles_batch",
    "window_summaries",
    "with_aomg_jar",
]

_LAZY = {
    "window_quantiles": "operator",
    "window_quantiles_batch": "operator",
    "window_summaries": "operator",
    "register": "functions",
    "with_aomg_jar": "functions",
    "errors": "functions",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"streaming.aomg.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'streaming.aomg' has no attribute {name!r}")
