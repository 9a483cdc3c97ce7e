"""Publish the manager's report: one ``blaze report: {json}`` log line, and a JSON file when
``spark.blaze.report.path`` asks for one.

Why a strict encoder: Python's ``json`` writes ``NaN``/``Infinity`` by default, which no
other JSON reader accepts; a non-finite number in the report (a ratio over zero, a disk cost
nobody measured) becomes ``null`` instead.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["finite", "publish_report", "report_json", "write_report"]


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (at any depth) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def report_json(report: dict, *, indent: int | None = None) -> str:
    """Standard JSON (keys sorted, no NaN/Infinity)."""
    return json.dumps(finite(report), sort_keys=True, allow_nan=False, indent=indent)


def write_report(report: dict, path: str | os.PathLike) -> Path:
    """Write ``report`` to ``path`` atomically (a reader never sees half a file)."""
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is an ordinary output file
    try:
        with os.fdopen(fd, "w") as out:
            out.write(report_json(report, indent=2) + "\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def publish_report(logger: logging.Logger, report: dict, path: str | None) -> None:
    """Log the report as one line and, if ``path`` is set, write it there as JSON."""
    logger.info("blaze report: %s", report_json(report))
    if path:
        try:
            write_report(report, path)
        except OSError as exc:
            logger.warning("blaze: could not write the report to %s: %s", path, exc)
