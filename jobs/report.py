"""Outputs of a bench run: the terminal table, ``results.json`` and PNG plots.

The table shows medians per (job, policy): time, its ratio to ``spark`` (the program as
written on stock Spark) and to ``unlimited``, recomputed partitions (counted by the cache
hook), bytes written to disk by caching (from the event log), and the cache hit rate; each
job's header names its spread (slowest stock-Spark policy / unlimited) and labels a job where
nothing matters as such. Then the targets, computed over the jobs where caching decides, with
the measured value and met/missed — misses are printed as plainly as hits.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from blaze_errors import InputError
from jobs import GENERATORS
from jobs.runner import BenchOutcome
from jobs.summary import (
    COMPARED,
    SPREAD_POLICIES,
    autounpersist_share,
    headlines,
    median_table,
    no_spread_measured,
    spreads,
    suite_targets,
    target_jobs,
)

__all__ = [
    "build_results",
    "combine_parts",
    "headline_lines",
    "markdown_results",
    "plot_results",
    "print_results",
    "repeats_text",
    "setup_lines",
    "without_machine_paths",
    "write_results",
]


def build_results(outcome: BenchOutcome) -> dict:
    return summarize(outcome.to_json())


# plan fields that may differ between the parts of one suite run (each part its own programs)
_PART_FIELDS = ("jobs", "out_dir", "data_dir", "resume")
# and what a repeat part (more repeats of programs an earlier part ran) may change besides
_REPEAT_FIELDS = ("policies", "repeats")
# a results file's lists of Spark applications (timed, sizing and profile runs) and, with its
# problems, every list that parts are combined by concatenating
APPLICATION_LISTS = ("runs", "footprint_runs", "profile_runs")
RUN_LISTS = (*APPLICATION_LISTS, "problems")


def applications(results: Mapping) -> int:
    """Spark applications a results file records: its timed, sizing and profile runs."""
    return sum(len(results.get(key, [])) for key in APPLICATION_LISTS)


def combine_parts(parts: Sequence[Mapping]) -> dict:
    """One suite result from runs of disjoint programs under one plan and one code.

    A full run is longer than a working session, so it is run a few programs at a time (each
    part a complete run: the program's sizing run, every policy, every answer checked); no
    answer is compared across programs, so the union is the run the whole plan would make.
    A part of programs an earlier part ran is a **repeat part**: more repeats of some of its
    policies, made with ``--resume`` into the earlier part's ``--out`` — so its sizing run
    and its first repeat are the earlier part's own (same footprint, same storage); its new
    repeats join their cells and the medians are taken over all of them.
    Parts made by other code (the sources' fingerprint), another plan or another node disk,
    a program run twice in other ways, are refused with one line naming the difference."""
    if not parts:
        raise InputError("no part to combine")
    first = parts[0]
    data = copy.deepcopy(dict(first))
    data["parts"] = []
    for key in RUN_LISTS:
        data[key] = []
    data["plan"]["jobs"], data["footprints_bytes"], data["wall_seconds"] = [], {}, 0
    seen_programs: dict[str, int] = {}
    for index, part in enumerate(parts):
        if part.get("code") != first.get("code"):
            raise InputError(
                f"part {index + 1} was run by other code (sources {part.get('code')}, "
                f"part 1 {first.get('code')}): its runs are not comparable"
            )
        repeated = [p for p in part["footprints_bytes"] if p in seen_programs]
        if repeated and len(repeated) < len(part["footprints_bytes"]):
            raise InputError(
                f"part {index + 1} repeats {', '.join(repeated)} but also runs other programs: "
                "a repeat part runs earlier parts' programs only"
            )
        may_differ = _PART_FIELDS + (_REPEAT_FIELDS if repeated else ())
        for key in sorted(set(first["plan"]) | set(part["plan"])):
            if key not in may_differ and part["plan"].get(key) != first["plan"].get(key):
                raise InputError(
                    f"part {index + 1} has plan {key} = {part['plan'].get(key)!r}, part 1 "
                    f"{first['plan'].get(key)!r}"
                )
        if _node_setting(part) != _node_setting(first):
            raise InputError(f"part {index + 1} ran on another disk: {_node_setting(part)}")
        if repeated:
            _add_repeats(data, part, index, seen_programs)
        else:
            for program in part["footprints_bytes"]:
                seen_programs[program] = index
            data["plan"]["jobs"] += part["plan"]["jobs"]
            for key in RUN_LISTS:
                data[key] += part.get(key, [])  # parts made before profiles had none
            data["footprints_bytes"].update(part["footprints_bytes"])
        data["wall_seconds"] += part["wall_seconds"]
        if data.get("node"):
            for key in ("app_memory_bytes_by_program", "memory_limit_bytes_by_program"):
                data["node"][key].update(part["node"][key])
        data["parts"].append(
            {"jobs": part["plan"]["jobs"], "wall_seconds": part["wall_seconds"]}
            | ({"facts": part["facts"]} if "facts" in part else {})
            | (
                {"repeat_of": sorted({seen_programs[p] + 1 for p in repeated})}
                | {key: part["plan"][key] for key in _REPEAT_FIELDS}
                if repeated
                else {}
            )
        )
    return summarize(data)


def _add_repeats(data: dict, part: Mapping, index: int, seen_programs: Mapping) -> None:
    """A repeat part's new runs join the suite's; the runs it resumed are already there."""
    for program, footprint in part["footprints_bytes"].items():
        if footprint != data["footprints_bytes"][program]:
            raise InputError(
                f"part {index + 1} repeats {program} with another footprint ({footprint} "
                f"bytes, part {seen_programs[program] + 1} {data['footprints_bytes'][program]}): "
                "run the repeats with --resume into that part's --out"
            )
    cells = {(run["job"], run["policy"], run.get("repeat", 0)): run for run in data["runs"]}
    for run in part["runs"]:
        cell = (run["job"], run["policy"], run.get("repeat", 0))
        if cell not in cells:
            data["runs"].append(run)
        elif not run.get("resumed") or run.get("seconds") != cells[cell].get("seconds"):
            raise InputError(
                f"part {index + 1} has another run of {cell[0]} / {cell[1]} repeat "
                f"{cell[2] + 1}: run the repeats with --resume into the earlier part's --out"
            )
    data["problems"] += part["problems"]


def repeats_text(results: Mapping) -> str:
    """How many runs each median is of: the plan's repeats, or the range when repeat parts
    added runs to some cells."""
    counts = {row.get("runs", 0) for rows in results["medians"].values() for row in rows.values()}
    counts.discard(0)
    if len(counts) <= 1:
        return f"median of {results['plan']['repeats']} repeat(s)"
    return f"median of {min(counts)}–{max(counts)} runs per cell (repeat parts added runs)"


def _node_setting(part: Mapping) -> str | None:
    node = part.get("node")
    return None if node is None else node["description"]


def summarize(data: dict) -> dict:
    """``data`` (a run's records) with its derived tables: per-job medians, spreads, the
    targets, the headlines and autoUnpersist's share."""
    table = median_table(data["runs"])
    data["medians"] = table
    data["spreads"] = spreads(table)
    data["targets"] = suite_targets(table)
    data["headlines"] = headlines(table)
    data["autounpersist_share"] = autounpersist_share(table)
    return data


def setup_lines(plan: Mapping, node: Mapping | None) -> list[str]:
    """The data shape and the disk the run used, as every result states them."""
    generator = plan.get("generator", 1)
    lines = [f"data: generator {generator} — {GENERATORS[generator]}"]
    if plan.get("profile_sample"):
        lines.append(
            f"profile: each manager policy's timed runs start from a profile its own untimed "
            f"run recorded on {plan['profile_sample']:g} of the data (scale "
            f"{plan['profile_sample'] * plan['scale']:g}; spark.blaze.profile.mode=record, then "
            "use) — the Blaze authors' setting; stock-Spark policies have no manager to read one"
        )
    else:
        lines.append("profile: none — the manager learns each dataset's uses as the program runs")
    if node is None:
        lines.append("disk: this machine's local disk and page cache as they are (--disk local)")
    else:
        lines.append(f"disk: {node['description']}")
        limits = node.get("memory_limit_bytes_by_program") or {}
        if limits:
            shown = ", ".join(f"{p} {v / 2**20:.0f} MiB" for p, v in limits.items())
            lines.append(f"memory limit per application: {shown}")
    return lines


def headline_lines(results: Mapping) -> list[str]:
    """One line per job and manager policy: speed-up over ``spark``, disk bytes vs mem_disk."""
    lines = []
    for item in results.get("headlines", []):
        parts = []
        if "speedup_vs_spark" in item:
            parts.append(f"{item['speedup_vs_spark']:.2f}× the speed of the program as written")
        if "disk_saved_vs_mem_disk" in item:
            parts.append(
                f"{item['disk_saved_vs_mem_disk']:.0%} fewer disk bytes than mem_disk "
                f"({_fmt(item['disk_bytes'], 'bytes')} vs {_fmt(item['mem_disk_bytes'], 'bytes')})"
            )
        lines.append(f"{item['job']} / {item['policy']}: " + "; ".join(parts))
    return lines


def _share_rows(results: Mapping) -> list[list[str]]:
    """Blaze next to mem_disk and mem_disk_au (autoUnpersist alone), per job and in all."""
    rows = []
    for job, entry in results.get("autounpersist_share", {}).items():
        row = [job]
        for policy in ("blaze", *COMPARED):
            cell = entry.get(policy, {})
            row.append(
                f"{_fmt(cell.get('seconds'), 's')} s, "
                f"{_fmt(cell.get('disk_bytes_written'), 'bytes')}"
            )
        for policy in COMPARED:
            row.append(_fmt(entry.get(f"time_vs_{policy}"), "x"))
            row.append(_fmt(entry.get(f"disk_saved_vs_{policy}"), "pct"))
        rows.append(row)
    return rows


SHARE_COLUMNS = (
    "job",
    "blaze",
    *COMPARED,
    *(f"{kind} vs {p}" for p in COMPARED for kind in ("time", "disk saved")),
)


def _fmt(value, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "s":
        return f"{value:.1f}"
    if kind == "x":
        return f"{value:.2f}×"
    if kind == "bytes":
        for unit in ("B", "KiB", "MiB", "GiB"):
            if abs(value) < 1024 or unit == "GiB":
                return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
            value /= 1024
    if kind == "pct":
        return f"{100 * value:.0f}%"
    return f"{value:.0f}"


def print_results(results: Mapping, console: Console) -> None:
    plan = results["plan"]
    table = Table(
        title=(
            f"blaze bench — scale {plan['scale']:g}, storage = {plan['memory_fraction']:.0%} "
            f"of footprint, {repeats_text(results)}"
        )
    )
    for column in (
        "job",
        "policy",
        "time s",
        "×spark",
        "×unlimited",
        "recomputed",
        "disk written",
        "hit rate",
        "note",
    ):
        table.add_column(column, justify="left" if column in ("job", "policy", "note") else "right")
    order = plan["policies"]
    for job, rows in results["medians"].items():
        heading = _job_heading(results, job)
        for i, policy in enumerate(p for p in order if p in rows):
            row = rows[policy]
            note = "" if row["status"] == "ok" else f"{row['status']}: {row.get('error', '')}"[:60]
            table.add_row(
                heading if i == 0 else "",
                policy,
                _fmt(row.get("seconds"), "s"),
                _fmt(row.get("x_spark"), "x"),
                _fmt(row.get("x_unlimited"), "x"),
                _fmt(row.get("recomputed_partitions"), "n"),
                _fmt(row.get("disk_bytes_written"), "bytes"),
                _fmt(row.get("cache_hit_rate"), "pct"),
                note,
                end_section=policy == [p for p in order if p in rows][-1],
            )
    console.print(table)
    for line in setup_lines(plan, results.get("node")):
        console.print(line)
    for line in headline_lines(results):
        console.print(f"[bold]{line}[/]")
    if all(item["met"] is None for item in results["targets"].values()):
        console.print(f"targets (Blaze): {_NOT_MEASURED}")
        for problem in results["problems"]:
            console.print(f"[bold red]PROBLEM[/] {problem}")
        return
    targets = Table(title=f"targets (Blaze), over {_target_scope(results)}")
    for column in ("target", "wanted", "measured", "met"):
        targets.add_column(column)
    for item in results["targets"].values():
        value = item["value"]
        shown = "-" if value is None else f"{value:.3f}"
        met = {True: "[green]met[/]", False: "[red]missed[/]", None: "not measured"}[item["met"]]
        targets.add_row(item["description"], item["target"], shown, met)
    console.print(targets)
    share = Table(title="Blaze next to mem_disk and mem_disk_au (autoUnpersist alone)")
    for column in SHARE_COLUMNS:
        share.add_column(column)
    for row in _share_rows(results):
        share.add_row(*row)
    console.print(share)
    for problem in results["problems"]:
        console.print(f"[bold red]PROBLEM[/] {problem}")


_NOT_MEASURED = (
    "none measured by this plan (they need unlimited, the stock policies and blaze on jobs "
    "with spread >= 1.2: the full run)"
)


def _job_heading(results: Mapping, job: str) -> str:
    """``job``, its program's footprint, and its spread with the label ("nothing matters")."""
    footprint = results["footprints_bytes"].get(job.split(".")[0])
    spread = results.get("spreads", {}).get(job, {})
    value = spread.get("spread")
    said = "spread -" if value is None else f"spread {value:.2f}× ({spread['label']})"
    return f"{job}\n{_fmt(footprint, 'bytes')} footprint\n{said}"


def _target_scope(results: Mapping) -> str:
    spread = results.get("spreads", {})
    if spread and no_spread_measured(spread):
        return (
            "every job: no spread was measured (the plan ran none of the stock policies "
            f"that recompute: {', '.join(SPREAD_POLICIES)})"
        )
    deciding = target_jobs(spread)
    if not deciding:
        return "no job: none has a spread >= 1.2"
    return f"jobs with spread >= 1.2: {', '.join(deciding)}"


# the checkout: a path inside it is written relative to it (results are committed)
CHECKOUT = Path(__file__).resolve().parent.parent


def without_machine_paths(value, root: Path = CHECKOUT):
    """``value`` (a results tree) with each absolute path made relative to the checkout, or
    cut to its last name if outside it: the manager's report carries the run's
    ``spark.local.dir``, which is this machine's, not the result's."""
    if isinstance(value, dict):
        return {key: without_machine_paths(item, root) for key, item in value.items()}
    if isinstance(value, list):
        return [without_machine_paths(item, root) for item in value]
    if isinstance(value, str) and os.path.isabs(value) and "\n" not in value:
        path = Path(value)
        return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    return value


def write_results(results: Mapping, out_dir: Path, stem: str = "bench") -> Path:
    """The results JSON, written without this machine's paths (it is committed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stem}_results.json"
    path.write_text(json.dumps(without_machine_paths(results), indent=1, default=str))
    return path


def plot_setting(results: Mapping) -> str:
    """The disk and the profile a run used, as a plot's title states them (two runs' plots
    side by side must not look alike when one started from profiles and one learnt online)."""
    node = results.get("node")
    disk = (
        f"node disk {node['read_bps'] / 1e6:g} MB/s, page cache "
        f"{node['page_cache_bytes'] / 2**20:g} MiB"
        if node
        else "local disk"
    )
    sample = results["plan"].get("profile_sample")
    return disk + (f", profiled on {sample:g} of the data" if sample else ", no profile")


def plot_results(results: Mapping, out_dir: Path, stem: str = "bench") -> list[Path]:
    """Two PNGs: median time per job and policy (normalised to unlimited), disk bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    medians = results["medians"]
    jobs = list(medians)
    policies = [p for p in results["plan"]["policies"] if any(p in medians[j] for j in jobs)]
    # time is shown relative to unlimited (the lower bound), else to the program as written
    base = next((p for p in ("unlimited", "spark") if p in policies), None)
    time_metric = (
        ("seconds", "median time, s")
        if base is None
        else (
            f"x_{base}",
            f"median time / {base} time",
        )
    )
    setting = plot_setting(results)
    paths = []
    for metric, ylabel, name in (
        (*time_metric, "time"),
        ("disk_bytes_written", "MiB written to disk by caching", "disk"),
    ):
        fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(jobs) + 2), 4.2))
        width = 0.8 / max(1, len(policies))
        x = np.arange(len(jobs))
        for i, policy in enumerate(policies):
            values = []
            for job in jobs:
                value = medians[job].get(policy, {}).get(metric)
                if value is not None and metric == "disk_bytes_written":
                    value = value / 2**20
                values.append(np.nan if value is None else value)
            ax.bar(x + (i - (len(policies) - 1) / 2) * width, values, width, label=policy)
        ax.set_xticks(x, jobs)
        ax.set_ylabel(ylabel)
        if metric.startswith("x_"):
            ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_title(
            f"{name}: scale {results['plan']['scale']:g}, generator "
            f"{results['plan'].get('generator', 1)}, storage "
            f"{results['plan']['memory_fraction']:.0%} of footprint, {setting}",
            fontsize=9,
        )
        ax.legend(fontsize=8, ncol=2)
        fig.tight_layout()
        path = out_dir / f"{stem}_{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def markdown_results(results: Mapping) -> str:
    """The same table and targets as :func:`print_results`, as Markdown (for committed runs)."""
    plan = results["plan"]
    lines = [
        f"# blaze bench — scale {plan['scale']:g}, storage {plan['memory_fraction']:.0%} of "
        f"footprint, {repeats_text(results)}",
        "",
        *(f"- {line}" for line in setup_lines(plan, results.get("node"))),
        "",
        "| job | spread | policy | time s | ×spark | ×unlimited | recomputed "
        "| disk written | hit rate | note |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for job, rows in results["medians"].items():
        footprint = _fmt(results["footprints_bytes"].get(job.split(".")[0]), "bytes")
        spread = results.get("spreads", {}).get(job, {})
        said = (
            "-" if spread.get("spread") is None else f"{spread['spread']:.2f}× ({spread['label']})"
        )
        for policy in (p for p in plan["policies"] if p in rows):
            row = rows[policy]
            note = "" if row["status"] == "ok" else f"{row['status']}: {row.get('error', '')}"
            lines.append(
                f"| {job} ({footprint}) | {said} | {policy} | {_fmt(row.get('seconds'), 's')} "
                f"| {_fmt(row.get('x_spark'), 'x')} | {_fmt(row.get('x_unlimited'), 'x')} "
                f"| {_fmt(row.get('recomputed_partitions'), 'n')} "
                f"| {_fmt(row.get('disk_bytes_written'), 'bytes')} "
                f"| {_fmt(row.get('cache_hit_rate'), 'pct')} | {note[:80]} |"
            )
    if heads := headline_lines(results):
        lines += ["", *(f"- {line}" for line in heads)]
    if all(item["met"] is None for item in results["targets"].values()):
        lines += ["", f"Targets: {_NOT_MEASURED}."]
        if results["problems"]:
            lines += ["", "Problems:", *(f"- {p}" for p in results["problems"])]
        return "\n".join(lines) + "\n"
    lines += [
        "",
        f"Targets over {_target_scope(results)} (the last one over every job).",
        "",
        "| target | wanted | measured | met |",
        "|---|---|---:|---|",
    ]
    for item in results["targets"].values():
        value = "-" if item["value"] is None else f"{item['value']:.3f}"
        met = {True: "met", False: "**missed**", None: "not measured"}[item["met"]]
        lines.append(f"| {item['description']} | {item['target']} | {value} | {met} |")
    lines += [
        "",
        "Blaze next to mem_disk and mem_disk_au (autoUnpersist alone): what Blaze gains over "
        "mem_disk_au is its cost model's own share.",
        "",
        "| " + " | ".join(SHARE_COLUMNS) + " |",
        "|" + "---|" * len(SHARE_COLUMNS),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in _share_rows(results)]
    if results["problems"]:
        lines += ["", "Problems:", *(f"- {p}" for p in results["problems"])]
    return "\n".join(lines) + "\n"
