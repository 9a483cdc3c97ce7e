"""The manager's profile: what a recorded run learned about each dataset site, for a later run.

Why its own small format: the manager matches datasets across runs by the user's source line
that created them (``file.py:42``) — the only identity that survives PySpark's pipelining and
a change of input size — and needs per site only a few facts: how many jobs used a dataset
of that site (F), whether it was reused (autoCache), its mean partition size and compute time.
``spark.blaze.profile.mode=record`` writes it at detach (run the program on sampled input);
``spark.blaze.profile.mode=use`` with ``spark.blaze.profile.path`` loads it at attach, and a
profile of another application (``spark.app.name``) or another format version is refused there.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from blaze_errors import InputError

__all__ = ["PROFILE_FORMAT", "PROFILE_VERSION", "load_profile", "write_profile"]

PROFILE_FORMAT = "blaze-manager-profile"
PROFILE_VERSION = 1


def write_profile(path: str | Path, app_name: str, sites: dict[str, dict]) -> Path:
    """Write the per-site facts of this run as JSON (atomically: temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "format": PROFILE_FORMAT,
        "version": PROFILE_VERSION,
        "app_name": app_name,
        "recorded_at": time.time(),
        "sites": sites,
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(body, indent=2, sort_keys=True))
    tmp.replace(path)
    return path


def load_profile(path: str | Path | None, app_name: str) -> dict:
    """Read and validate a profile for application ``app_name``; raises :class:`InputError`."""
    if not path:
        raise InputError("spark.blaze.profile.mode=use needs spark.blaze.profile.path")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"profile not found: {path}")
    try:
        body = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"profile {path} is not readable JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("format") != PROFILE_FORMAT:
        raise InputError(f"{path} is not a Blaze manager profile")
    if body.get("version") != PROFILE_VERSION:
        raise InputError(
            f"profile {path} has format version {body.get('version')!r}; "
            f"this Blaze reads version {PROFILE_VERSION} (record it again)"
        )
    if body.get("app_name") != app_name:
        raise InputError(
            f"profile {path} was recorded for application {body.get('app_name')!r}, "
            f"not {app_name!r}"
        )
    sites = body.get("sites")
    if not isinstance(sites, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("uses"), int) for v in sites.values()
    ):
        raise InputError(f"profile {path} has a malformed 'sites' table")
    return body
