"""Medians, ratios and the suite's target check, from the runs' records (pure Python).

Ratios: "speed-up of blaze vs X" is ``time(X) / time(blaze)`` (> 1 means Blaze is faster);
"ratio to unlimited" is ``time(blaze) / time(unlimited)`` (1.0 is the lower bound). A job's
*spread* — its slowest stock-Spark policy that recomputes what does not fit (``none``,
``spark``, ``mem_only``) over ``unlimited`` — says whether caching can matter for it at all; the
targets are computed over the jobs where it does (spread >= 1.2), and a job where nothing
matters is still reported, labelled so. A plan that ran none of those policies (a node-mode
point of ``mem_disk`` and the manager policies) measures no spread: its targets run over every
job, and say so. Geo-means run over the jobs where both policies have a median.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence

from costmodel.policy_table import POLICY_TABLE, RIVAL_POLICIES, STOCK_POLICIES, policy_info

__all__ = [
    "COMPARED",
    "DECIDING_SPREAD",
    "SPREAD_POLICIES",
    "TARGETS",
    "TIE_SPREAD",
    "autounpersist_share",
    "geomean",
    "headlines",
    "median_table",
    "no_spread_measured",
    "spreads",
    "suite_targets",
    "target_jobs",
]

# a job whose slowest stock-Spark policy is within this factor of unlimited: nothing matters
TIE_SPREAD = 1.1
# the targets are computed over the jobs whose spread reaches this: there caching decides
DECIDING_SPREAD = 1.2
# mem_disk is left out: it spills what does not fit, so its time says what the disk costs, not
# whether caching decides (alone it would count a job deciding only where the disk is slow)
SPREAD_POLICIES = tuple(p for p in STOCK_POLICIES if not policy_info(p, STOCK_POLICIES).spills)

# name -> (description, comparison, threshold)
TARGETS = {
    "speedup_vs_mem_only": ("blaze speed-up vs mem_only (geo-mean)", ">=", 2.0),
    "speedup_vs_spark": ("blaze speed-up vs spark, programs as written (geo-mean)", ">=", 1.5),
    "speedup_vs_mem_disk": ("blaze speed-up vs mem_disk (geo-mean)", ">=", 1.2),
    "speedup_vs_best_lrc_mrd": ("blaze speed-up vs better of lrc/mrd (geo-mean)", ">=", 1.1),
    "worst_ratio_to_unlimited": ("blaze time / unlimited, worst job", "<=", 1.05),
    "disk_reduction_vs_mem_disk": ("disk bytes saved vs mem_disk (total)", ">=", 0.95),
    "auto_vs_blaze": ("blaze_auto time / blaze time (geo-mean)", "<=", 1.1),
    "worst_vs_mem_disk_all_jobs": ("blaze time / mem_disk, worst of ALL jobs", "<=", 1.03),
}

METRICS = (
    "seconds",
    "recomputed_partitions",
    "disk_bytes_written",
    "cache_hit_rate",
    "dead_writes",
)
# what Blaze is set next to, to show its cost model's own share: stock MEMORY_AND_DISK, and
# the same with the manager's autoUnpersist alone
COMPARED = ("mem_disk", "mem_disk_au")


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
        for base in ("mem_only", "spark", "unlimited"):
            base_time = rows.get(base, {}).get("seconds")
            for row in rows.values():
                if row.get("seconds") and base_time:
                    row[f"x_{base}"] = row["seconds"] / base_time
    return table


def _time(rows: Mapping, policy: str) -> float | None:
    return rows.get(policy, {}).get("seconds")


def spreads(table: Mapping[str, Mapping[str, Mapping]]) -> dict[str, dict]:
    """Per job: slowest stock-Spark policy / unlimited, and what that says.

    ``label`` is ``"nothing matters"`` below :data:`TIE_SPREAD`, ``"deciding"`` from
    :data:`DECIDING_SPREAD` on, ``"small"`` between; ``None`` spread = not measured.
    """
    out = {}
    for job, rows in table.items():
        base = _time(rows, "unlimited")
        timed = [(t, p) for p in SPREAD_POLICIES if (t := _time(rows, p)) is not None]
        if not base or not timed:
            out[job] = {"spread": None, "slowest": None, "label": "not measured"}
            continue
        slowest_time, slowest = max(timed)
        spread = slowest_time / base
        label = (
            "nothing matters"
            if spread < TIE_SPREAD
            else ("deciding" if spread >= DECIDING_SPREAD else "small")
        )
        out[job] = {"spread": spread, "slowest": slowest, "label": label}
    return out


def no_spread_measured(spread: Mapping[str, Mapping]) -> bool:
    """Whether no job's spread was measured (:func:`spreads`): the plan ran none of
    :data:`SPREAD_POLICIES`, or no ``unlimited``."""
    return all(s["spread"] is None for s in spread.values())


def target_jobs(spread: Mapping[str, Mapping]) -> list[str]:
    """The jobs the targets are computed over, from each job's :func:`spreads`: those whose
    spread decides (>= 1.2); every job when the plan measured no spread at all (it ran no
    policy that recomputes)."""
    if no_spread_measured(spread):
        return sorted(spread)
    return [j for j, s in spread.items() if s["label"] == "deciding"]


def suite_targets(table: Mapping[str, Mapping[str, Mapping]]) -> dict[str, dict]:
    """Each target's measured value, threshold, whether it is met (None = not measured), and
    the jobs it was computed over: the deciding ones (spread >= 1.2), or every job when no
    job's spread was measured; the last target covers every job."""
    deciding = target_jobs(spreads(table))
    ratios: dict[str, list[float]] = {name: [] for name in TARGETS}
    blaze_disk = mem_disk_disk = 0.0
    disk_jobs = 0
    for job, rows in table.items():
        blaze = _time(rows, "blaze")
        if blaze is None:
            continue
        if (t := _time(rows, "mem_disk")) is not None:
            ratios["worst_vs_mem_disk_all_jobs"].append(blaze / t)
        if job not in deciding:
            continue
        for name, policy in (
            ("speedup_vs_mem_only", "mem_only"),
            ("speedup_vs_spark", "spark"),
            ("speedup_vs_mem_disk", "mem_disk"),
        ):
            if (t := _time(rows, policy)) is not None:
                ratios[name].append(t / blaze)
        rivals = [t for p in RIVAL_POLICIES if (t := _time(rows, p)) is not None]
        if rivals:
            ratios["speedup_vs_best_lrc_mrd"].append(min(rivals) / blaze)
        if (t := _time(rows, "unlimited")) is not None:
            ratios["worst_ratio_to_unlimited"].append(blaze / t)
        if (t := _time(rows, "blaze_auto")) is not None:
            ratios["auto_vs_blaze"].append(t / blaze)
        bd = rows["blaze"].get("disk_bytes_written")
        md = rows.get("mem_disk", {}).get("disk_bytes_written")
        if bd is not None and md is not None:
            blaze_disk += bd
            mem_disk_disk += md
            disk_jobs += 1
    measured = {
        name: (max(values) if name.startswith("worst") else geomean(values)) if values else None
        for name, values in ratios.items()
    }
    measured["disk_reduction_vs_mem_disk"] = (
        1 - blaze_disk / mem_disk_disk if disk_jobs and mem_disk_disk > 0 else None
    )
    out = {}
    for name, (description, op, threshold) in TARGETS.items():
        value = measured[name]
        met = None if value is None else (value >= threshold if op == ">=" else value <= threshold)
        out[name] = {
            "description": description,
            "target": f"{op} {threshold}",
            "value": value,
            "met": met,
            "jobs": sorted(table) if name == "worst_vs_mem_disk_all_jobs" else deciding,
        }
    return out


def autounpersist_share(table: Mapping[str, Mapping[str, Mapping]]) -> dict[str, dict]:
    """Per job, and over all jobs: Blaze's time and disk bytes next to ``mem_disk`` and
    ``mem_disk_au`` (the same with autoUnpersist alone). ``time_vs_X`` is
    ``time(blaze) / time(X)``; ``disk_saved_vs_X`` is ``1 - disk(blaze) / disk(X)``. What
    Blaze gains over ``mem_disk_au`` is its cost model's own; the rest of its gain over
    ``mem_disk`` is autoUnpersist's."""
    out: dict[str, dict] = {}
    totals = {p: [0.0, 0.0] for p in ("blaze", *COMPARED)}  # [seconds, disk bytes]
    complete = True
    for job, rows in table.items():
        entry: dict = {}
        blaze_row = rows.get("blaze", {})
        for policy in ("blaze", *COMPARED):
            row = rows.get(policy, {})
            entry[policy] = {
                "seconds": row.get("seconds"),
                "disk_bytes_written": row.get("disk_bytes_written"),
            }
            if row.get("seconds") is None or row.get("disk_bytes_written") is None:
                complete = False
            else:
                totals[policy][0] += row["seconds"]
                totals[policy][1] += row["disk_bytes_written"]
        for policy in COMPARED:
            row = rows.get(policy, {})
            t, bt = row.get("seconds"), blaze_row.get("seconds")
            d, bd = row.get("disk_bytes_written"), blaze_row.get("disk_bytes_written")
            entry[f"time_vs_{policy}"] = bt / t if t and bt is not None else None
            entry[f"disk_saved_vs_{policy}"] = 1 - bd / d if d and bd is not None else None
        out[job] = entry
    if table and complete:
        blaze_s, blaze_d = totals["blaze"]
        out["all jobs"] = {
            p: {"seconds": totals[p][0], "disk_bytes_written": totals[p][1]}
            for p in ("blaze", *COMPARED)
        }
        for policy in COMPARED:
            seconds, disk = totals[policy]
            out["all jobs"][f"time_vs_{policy}"] = blaze_s / seconds if seconds else None
            out["all jobs"][f"disk_saved_vs_{policy}"] = 1 - blaze_d / disk if disk else None
    return out


# the manager's policies a headline speaks for (those placing by Blaze's rule)
HEADLINE_POLICIES = tuple(p.name for p in POLICY_TABLE if p.bench and p.rule == "blaze")


def headlines(table: Mapping[str, Mapping[str, Mapping]]) -> list[dict]:
    """Per job and manager policy: its speed-up over ``spark`` (the program as written on
    stock Spark) and the share of ``mem_disk``'s disk bytes it did not write — the two effects
    a short run can show. A comparison whose policy did not run is left out."""
    out = []
    for job, rows in table.items():
        for policy in HEADLINE_POLICIES:
            mine = rows.get(policy, {}).get("seconds")
            if mine is None:
                continue
            item: dict = {"job": job, "policy": policy, "seconds": mine}
            if (spark := _time(rows, "spark")) is not None:
                item["speedup_vs_spark"] = spark / mine
            disk = rows[policy].get("disk_bytes_written")
            mem_disk = rows.get("mem_disk", {}).get("disk_bytes_written")
            if disk is not None and mem_disk:
                item["disk_bytes"], item["mem_disk_bytes"] = disk, mem_disk
                item["disk_saved_vs_mem_disk"] = 1 - disk / mem_disk
            if len(item) > 3:
                out.append(item)
    return out
