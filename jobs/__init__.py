"""Iterative workloads, their data generators, DuckDB verification and the benchmark runner.

Each job module (``pagerank``, ``cc``, ``kmeans``, ``lr``, ``als``, ``mlkmeans``) is a plain
PySpark program exposing ``NAME``, ``DATASET`` (a :mod:`jobs.datagen` kind),
``params(scale) -> dict`` and ``run(spark, data_path, cacher, params) -> JobResult``; every
persist goes through a :class:`jobs.caching.Cacher` so the benchmark policy picks the level.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from blaze.errors import InputError

__all__ = ["JOB_NAMES", "load_job"]

JOB_NAMES = ("pagerank", "cc", "kmeans", "lr", "als", "mlkmeans")


def load_job(name: str) -> ModuleType:
    """The job module called ``name`` (an :class:`InputError` naming the known jobs if none)."""
    if name not in JOB_NAMES:
        raise InputError(f"unknown job {name!r} (known: {', '.join(JOB_NAMES)})")
    return importlib.import_module(f"jobs.{name}")
