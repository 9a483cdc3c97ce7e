"""Medians, ratios and the suite's target check, from the runs' records (pure Python).

Ratios follow the issue's convention: "speed-up of blaze vs X" is ``time(X) / time(blaze)``
(> 1 means Blaze is faster) and "ratio to unlimited" is ``time(blaze) / time(unlimited)``
(1.0 is the lower bound). Geo-means run over the jobs where both policies have a median.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["TARGETS", "geomean", "median_table", "suite_targets"]

# name -> (description, comparison, threshold)
TARGETS = {
    "speedup_vs_mem_only": ("blaze speed-up vs mem_only (geo-mean)", ">=", 2.5),
    "speedup_vs_mem_disk": ("blaze speed-up vs mem_disk (geo-mean)", ">=", 1.5),
    "speedup_vs_best_lrc_mrd": ("blaze speed-up vs better of lrc/mrd (geo-mean)", ">=", 1.2),
    "ratio_to_unlimited": ("blaze time / unlimited time (geo-mean)", "<=", 1.15),
    "disk_reduction_vs_mem_disk": ("disk bytes saved vs mem_disk (suite total)", ">=", 0.95),
}

METRICS = ("seconds", "recomputed_partitions", "disk_bytes_written", "cache_hit_rate")


def geomean(values: Iterable[float]) -> float | None:
    vals = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    if not vals:
        return None
    return math.exp(sum(math.log(v) for v in vals) / len(vals))


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def median_table(runs: Iterable[Mapping]) -> dict[str, dict[str, dict]]:
    """``{job: {policy: {metric: median, "runs": n, "status": ...}}}`` over successful runs.

    A (job, policy) with no successful run keeps the status of its runs ("failed",
    "mismatch") so the table shows why it has no numbers.
    """
    grouped: dict[tuple[str, str], list[Mapping]] = {}
    for run in runs:
        grouped.setdefault((run["job"], run["policy"]), []).append(run)
    table: dict[str, dict[str, dict]] = {}
    for (job, policy), items in grouped.items():
        ok = [r for r in items if r.get("status") == "ok"]
        row: dict = {"runs": len(ok), "attempts": len(items)}
        if ok:
            row["status"] = "ok"
            for metric in METRICS:
                row[metric] = _median([r.get(metric) for r in ok])
        else:
            row["status"] = items[-1].get("status", "failed")
            row["error"] = items[-1].get("error", "")
        table.setdefault(job, {})[policy] = row
    for rows in table.values():
        for base in ("mem_only", "unlimited"):
            base_time = rows.get(base, {}).get("seconds")
            for row in rows.values():
                if row.get("seconds") and base_time:
                    row[f"x_{base}"] = row["seconds"] / base_time
    return table


def _time(rows: Mapping, policy: str) -> float | None:
    return rows.get(policy, {}).get("seconds")


def suite_targets(table: Mapping[str, Mapping[str, Mapping]]) -> dict[str, dict]:
    """Each target's measured value, threshold and whether it is met (None = not measured)."""
    vs_mem_only, vs_mem_disk, vs_best, to_unlimited = [], [], [], []
    blaze_disk = mem_disk_disk = 0.0
    disk_jobs = 0
    for rows in table.values():
        blaze = _time(rows, "blaze")
        if blaze is None:
            continue
        if (t := _time(rows, "mem_only")) is not None:
            vs_mem_only.append(t / blaze)
        if (t := _time(rows, "mem_disk")) is not None:
            vs_mem_disk.append(t / blaze)
        rivals = [t for p in ("lrc", "mrd") if (t := _time(rows, p)) is not None]
        if rivals:
            vs_best.append(min(rivals) / blaze)
        if (t := _time(rows, "unlimited")) is not None:
            to_unlimited.append(blaze / t)
        bd = rows["blaze"].get("disk_bytes_written")
        md = rows.get("mem_disk", {}).get("disk_bytes_written")
        if bd is not None and md is not None:
            blaze_disk += bd
            mem_disk_disk += md
            disk_jobs += 1
    measured = {
        "speedup_vs_mem_only": geomean(vs_mem_only),
        "speedup_vs_mem_disk": geomean(vs_mem_disk),
        "speedup_vs_best_lrc_mrd": geomean(vs_best),
        "ratio_to_unlimited": geomean(to_unlimited),
        "disk_reduction_vs_mem_disk": (
            1 - blaze_disk / mem_disk_disk if disk_jobs and mem_disk_disk > 0 else None
        ),
    }
    out = {}
    for name, (description, op, threshold) in TARGETS.items():
        value = measured[name]
        met = None if value is None else (value >= threshold if op == ">=" else value <= threshold)
        out[name] = {
            "description": description,
            "target": f"{op} {threshold}",
            "value": value,
            "met": met,
        }
    return out
