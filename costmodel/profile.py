"""Versioned JSON profiles: the DAG, sites, measured metrics and fitted predictors of one run.

The one profile format of the project: the cache manager records it
(``spark.blaze.profile.mode=record``) and loads it (``use``); ``blaze profile show`` prints it.
``sites`` holds what the manager learnt per dataset site (the program lines that create a
dataset, stable across runs and input sizes): how many jobs read a dataset of that site,
whether it was reused and cached, its mean partition size and compute time.

``spark.blaze.profile.mode=record`` runs the application on sampled input and ``record``s a
profile; a real run ``load``s it and starts with a DAG and with predictors that already know
how each dataset grows. A profile is only meaningful for the application and the Blaze
version that wrote it (RDD ids, call sites and the cost model's rules must match), so
``load`` refuses, in one line naming both sides, a profile of another application, another
Blaze version or another profile format.

Format (``format_version`` 1)::

    {"format": "blaze-spark/costmodel-profile", "format_version": 1,
     "blaze_version": "0.1.0", "app_name": "pagerank", "created_at": 1764000000.0,
     "input_scale": 0.01,
     "rdds": [{"rdd_id": 0, "parents": [], "num_partitions": 4, "stages": [0], "job_id": 0,
               "call_site": "...", "shuffled": false, "cached": true, "name": "..."}],
     "metrics": [{"rdd_id": 0, "split": 0, "size_bytes": 1024.0, "compute_ms": 12.0}],
     "completed_stages": [0],
     "sites": {"app.py:12": {"uses": 3, "reads": 3, "reused": true, "cached": true,
                             "generations": 1, "partition_bytes": 5120.0, "compute_ms": 40.0}},
     "predictors": {... Predictors.to_dict() ...}}
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from blaze_errors import InputError
from costmodel.cost import CostModel
from costmodel.disk import DiskCost
from costmodel.predict import Predictors
from costmodel.types import PartitionKey, PartitionMetrics, RddSpec

__all__ = ["FORMAT", "FORMAT_VERSION", "Profile", "ProfileError", "blaze_version", "load", "record"]

FORMAT = "blaze-spark/costmodel-profile"
FORMAT_VERSION = 1


class ProfileError(InputError):
    """A profile that cannot be used: missing, malformed, or from another app or version."""


def blaze_version() -> str:
    """The installed blaze-spark version (what profiles are stamped with)."""
    try:
        return metadata.version("blaze-spark")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0+source"


@dataclass
class Profile:
    """A loaded (or about to be recorded) profile."""

    app_name: str
    rdds: list[RddSpec]
    metrics: dict[PartitionKey, PartitionMetrics] = field(default_factory=dict)
    completed_stages: frozenset[int] = frozenset()
    predictors: Predictors = field(default_factory=Predictors)
    input_scale: float = 1.0
    blaze_version: str = field(default_factory=blaze_version)
    created_at: float = field(default_factory=time.time)
    sites: dict[str, dict] = field(default_factory=dict)

    def to_model(self, disk: DiskCost, **options: Any) -> CostModel:
        """A cost model seeded with the profiled DAG and metrics (``options`` as CostModel's)."""
        return CostModel(self.rdds, self.metrics, disk, **options)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "blaze_version": self.blaze_version,
            "app_name": self.app_name,
            "created_at": self.created_at,
            "input_scale": self.input_scale,
            "rdds": [
                {
                    "rdd_id": r.rdd_id,
                    "parents": list(r.parents),
                    "num_partitions": r.num_partitions,
                    "stages": sorted(r.stages),
                    "job_id": r.job_id,
                    "call_site": r.call_site,
                    "shuffled": r.shuffled,
                    "cached": r.cached,
                    "name": r.name,
                }
                for r in sorted(self.rdds, key=lambda r: r.rdd_id)
            ],
            "metrics": [
                {
                    "rdd_id": k[0],
                    "split": k[1],
                    "size_bytes": m.size_bytes,
                    "compute_ms": m.compute_ms,
                }
                for k, m in sorted(self.metrics.items())
            ],
            "completed_stages": sorted(self.completed_stages),
            "sites": {k: dict(v) for k, v in sorted(self.sites.items())},
            "predictors": self.predictors.to_dict(),
        }

    @classmethod
    def from_model(
        cls,
        model: CostModel,
        app_name: str,
        predictors: Predictors | None = None,
        input_scale: float = 1.0,
        sites: dict[str, dict] | None = None,
    ) -> Profile:
        metrics = model.measurements()  # what was measured, not the fallbacks
        return cls(
            app_name=app_name,
            rdds=list(model.rdds.values()),
            metrics=metrics,
            completed_stages=model.completed_stages,
            predictors=predictors or Predictors(),
            input_scale=input_scale,
            sites=dict(sites or {}),
        )


def record(
    path: str | Path,
    model: CostModel,
    *,
    app_name: str,
    predictors: Predictors | None = None,
    input_scale: float = 1.0,
    sites: dict[str, dict] | None = None,
) -> Path:
    """Write the profile of ``model`` (+ ``predictors``, ``sites``) to ``path`` atomically."""
    if not app_name:
        raise ValueError("a profile needs the application's name (spark.app.name)")
    if not input_scale > 0:
        raise ValueError(f"input_scale must be > 0, got {input_scale!r}")
    profile = Profile.from_model(model, app_name, predictors, input_scale, sites)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(profile.to_json(), indent=1, sort_keys=True))
    tmp.replace(path)
    return path


def load(
    path: str | Path, *, app_name: str | None = None, expected_version: str | None = None
) -> Profile:
    """Read a profile; refuse one of another app (if ``app_name`` is given) or version."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProfileError(f"profile not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"profile {path} cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ProfileError(f"profile {path} is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ProfileError(f"{path} is not a blaze-spark cost-model profile")
    if data.get("format_version") != FORMAT_VERSION:
        raise ProfileError(
            f"profile {path} has format version {data.get('format_version')!r}; "
            f"this Blaze reads version {FORMAT_VERSION} — record the profile again"
        )
    version = expected_version or blaze_version()
    if data.get("blaze_version") != version:
        raise ProfileError(
            f"profile {path} was recorded by Blaze {data.get('blaze_version')!r}, "
            f"this is Blaze {version!r} — record the profile again"
        )
    if app_name is not None and data.get("app_name") != app_name:
        raise ProfileError(
            f"profile {path} belongs to application {data.get('app_name')!r}, "
            f"not {app_name!r} — set spark.blaze.profile.path to this application's profile"
        )
    try:
        rdds = [
            RddSpec(
                rdd_id=int(r["rdd_id"]),
                parents=tuple(int(p) for p in r.get("parents", ())),
                num_partitions=int(r.get("num_partitions", 1)),
                stages=frozenset(int(s) for s in r.get("stages", ())),
                job_id=None if r.get("job_id") is None else int(r["job_id"]),
                call_site=str(r.get("call_site", "")),
                shuffled=bool(r.get("shuffled", False)),
                cached=bool(r.get("cached", False)),
                name=str(r.get("name", "")),
            )
            for r in data["rdds"]
        ]
        metrics = {
            (int(m["rdd_id"]), int(m["split"])): PartitionMetrics(
                m.get("size_bytes"), m.get("compute_ms")
            )
            for m in data.get("metrics", [])
        }
        sites = data.get("sites", {})
        if not isinstance(sites, dict) or not all(
            isinstance(v, dict)
            and isinstance(v.get("uses", 0), int)
            and isinstance(v.get("reads", 0), int)
            for v in sites.values()
        ):
            raise ValueError(
                "'sites' must map each site to a table with an integer 'uses' (and 'reads')"
            )
        return Profile(
            app_name=str(data["app_name"]),
            rdds=rdds,
            metrics=metrics,
            completed_stages=frozenset(int(s) for s in data.get("completed_stages", ())),
            predictors=Predictors.from_dict(data.get("predictors", {})),
            input_scale=float(data.get("input_scale", 1.0)),
            blaze_version=str(data["blaze_version"]),
            created_at=float(data.get("created_at", 0.0)),
            sites={str(k): dict(v) for k, v in sites.items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProfileError(f"profile {path} is malformed: {type(exc).__name__}: {exc}") from None
