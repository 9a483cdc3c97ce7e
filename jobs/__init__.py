"""Iterative workloads, their data generators, DuckDB verification and the benchmark runner.

Each job module (``pagerank``, ``cc``, ``kmeans``, ``lr``, ``als``, ``mlkmeans``) is a plain
PySpark program exposing ``NAME``, ``DATASET`` (a :mod:`jobs.datagen` kind),
``params(scale) -> dict`` and ``run(spark, data_path, cacher, params) -> JobResult``; every
persist goes through a :class:`jobs.caching.Cacher` so the benchmark policy picks the level.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from blaze_errors import InputError

__all__ = ["JOB_NAMES", "dataset_spec", "job_params", "load_job", "parse_param_overrides"]

JOB_NAMES = ("pagerank", "cc", "kmeans", "lr", "als", "mlkmeans")


def load_job(name: str) -> ModuleType:
    """The job module called ``name`` (an :class:`InputError` naming the known jobs if none)."""
    if name not in JOB_NAMES:
        raise InputError(f"unknown job {name!r} (known: {', '.join(JOB_NAMES)})")
    return importlib.import_module(f"jobs.{name}")


def dataset_spec(name: str, scale: float, seed: int = 42):
    """The input dataset of job ``name`` at ``scale``: its kind at ``scale * DATA_SCALE``.

    ``DATA_SCALE`` (default 1) lets a job whose cache is much denser than the others' (a
    columnar DataFrame cache) read proportionally more data, so that at one suite scale its
    footprint is also several times the smallest pool its operators can run in.
    """
    from jobs.datagen import spec_for

    job = load_job(name)
    return spec_for(job.DATASET, scale * float(getattr(job, "DATA_SCALE", 1.0)), seed)


def parse_param_overrides(items: list[str] | tuple[str, ...] | None) -> dict[str, float]:
    """``["iterations=3"]`` -> ``{"iterations": 3}`` (ints stay ints)."""
    overrides: dict[str, float] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--param {item!r} must look like name=number (e.g. iterations=3)")
        try:
            number = float(value)
        except ValueError:
            raise InputError(f"--param {item!r}: {value!r} is not a number") from None
        overrides[key.strip()] = int(number) if number.is_integer() else number
    return overrides


def job_params(name: str, scale: float, overrides: dict | None = None) -> dict:
    """The job's parameters at ``scale`` with the overrides it knows applied."""
    params = load_job(name).params(scale)
    for key, value in (overrides or {}).items():
        if key in params:
            params[key] = type(params[key])(value)
    return params
