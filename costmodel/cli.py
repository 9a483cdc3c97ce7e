"""``blaze profile show PATH`` and ``blaze disk calibrate``: look inside the cost model's inputs."""

from __future__ import annotations

import argparse
import json

__all__ = ["register"]


def _show(args: argparse.Namespace) -> int:
    from costmodel.profile import load

    profile = load(args.path, app_name=args.app)
    if args.json:
        print(json.dumps(profile.to_json(), indent=1, sort_keys=True))
        return 0
    print(f"profile      {args.path}")
    print(f"application  {profile.app_name}  (Blaze {profile.blaze_version})")
    print(f"input scale  {profile.input_scale:g}")
    print(f"DAG          {len(profile.rdds)} RDDs, {len(profile.metrics)} measured partitions")
    reused = sorted(
        r.rdd_id for r in profile.rdds if sum(r.rdd_id in o.parents for o in profile.rdds) > 1
    )
    print(f"reused RDDs  {reused if reused else 'none'}")
    print(f"sites        {len(profile.sites)}")
    for site, facts in sorted(profile.sites.items()):
        flags = ", ".join(k for k in ("reused", "cached") if facts.get(k)) or "read once"
        size = facts.get("partition_bytes")
        size_text = f", {size / 1024:.1f} KiB/partition" if size else ""
        uses = facts.get("uses", 0)
        reads = f", {facts['reads']} read it" if "reads" in facts else ""
        print(f"site         {site[:70]}: {uses} uses{reads} ({flags}){size_text}")
    report = profile.predictors.error_report()
    for key, predictor in sorted(profile.predictors.datasets.items()):
        fitted = predictor.fits()
        errors = report["datasets"].get(key, {})
        size_err = errors.get("median_size_error")
        kind = fitted[0].kind if fitted else "-"
        err = f"{size_err:.1%}" if size_err is not None else "n/a"
        print(
            f"dataset      {key[:70]}: {len(predictor.iterations)} iterations, "
            f"size model {kind}, median size error {err}"
        )
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    import tempfile

    from costmodel.disk import calibrate_disk

    cost = calibrate_disk(args.dir or tempfile.gettempdir())
    print(
        f"{cost.local_dir}: write {cost.write_ms_per_mib:.3f} ms/MiB, "
        f"read {cost.read_ms_per_mib:.3f} ms/MiB ({cost.read_mode} read), "
        f"deserialize {cost.deserialize_ms_per_mib:.3f} ms/MiB"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    profile = subparsers.add_parser("profile", help="inspect a recorded cost-model profile")
    actions = profile.add_subparsers(dest="profile_command", metavar="ACTION")
    show = actions.add_parser("show", help="summarise a profile (DAG, metrics, predictors)")
    show.add_argument("path")
    show.add_argument("--app", help="fail unless the profile belongs to this application")
    show.add_argument("--json", action="store_true", help="print the whole profile as JSON")
    show.set_defaults(func=_show)
    profile.set_defaults(func=lambda args: profile.print_help() or 2)

    disk = subparsers.add_parser("disk", help="this machine's disk cost for the cost model")
    disk_actions = disk.add_subparsers(dest="disk_command", metavar="ACTION")
    calibrate = disk_actions.add_parser(
        "calibrate", help="measure W, Rd and the deserialization cost in ms/MiB"
    )
    calibrate.add_argument("--dir", help="the Spark local dir (default: the temp dir)")
    calibrate.set_defaults(func=_calibrate)
    disk.set_defaults(func=lambda args: disk.print_help() or 2)
