"""Node mode's cgroups on the real machine (no Spark): set-up, limits, clean-up, refusals.

A tiny child process tree runs inside the groups. The tests that need root and cgroup v1
skip — saying why — on a machine that has neither; the refusal tests run everywhere.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import jobs.nodedisk
from blaze_errors import InputError, MachineError
from jobs.nodedisk import (
    DEFAULT_PAGE_CACHE_MIB,
    POINTS,
    NodeGroup,
    drop_from_page_cache,
    parse_node,
    probe_host,
)
from jobs.plan import make_plan

GIB = 1 << 30
MIB = 1 << 20


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    local = tmp_path_factory.mktemp("node-local")
    try:
        return probe_host(local)
    except MachineError as exc:
        pytest.skip(f"this machine cannot run node mode: {exc}")


@pytest.fixture(autouse=True)
def short_grace(monkeypatch):
    """Leftover processes of a finished run get 0.2 s instead of 5 s to exit by themselves."""
    monkeypatch.setattr(jobs.nodedisk, "EXIT_GRACE_S", 0.2)


def _group_name(tag: str) -> str:
    return f"blaze-node-test-{os.getpid()}-{tag}"


def _dead(pid: int) -> bool:
    """Gone, or a zombie nobody reaped yet (it runs nothing and holds no memory)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


# a child that starts a grandchild, reports both pids and both cgroup files, then sleeps
CHILD = """
import subprocess, sys, time
grandchild = subprocess.Popen(["sleep", "300"])
with open(sys.argv[1], "w") as out:
    out.write(f"{grandchild.pid}\\n")
    out.write(open("/proc/self/cgroup").read())
time.sleep(300)
"""


def _start_child(group: NodeGroup, report: Path) -> tuple[subprocess.Popen, int, str]:
    child = subprocess.Popen(group.wrap([sys.executable, "-c", CHILD, str(report)]))
    deadline = time.monotonic() + 30
    while not (report.is_file() and "memory:" in report.read_text()):
        assert child.poll() is None, f"the child exited with {child.returncode}"
        assert time.monotonic() < deadline, "the child never reported"
        time.sleep(0.05)
    grandchild, cgroups = report.read_text().split("\n", 1)
    return child, int(grandchild), cgroups


def test_groups_hold_the_child_tree_with_the_stated_limits_then_vanish(host, tmp_path):
    name = _group_name("limits")
    limit, read_bps, write_bps = 300 * MIB, 200 * 10**6, 150 * 10**6
    with NodeGroup(host, name, memory_limit=limit, read_bps=read_bps, write_bps=write_bps) as group:
        child, grandchild, cgroups = _start_child(group, tmp_path / "report")
        assert group.memory_dir.is_dir() and group.blkio_dir.is_dir()
        assert int((group.memory_dir / "memory.limit_in_bytes").read_text()) == limit
        read = (group.blkio_dir / "blkio.throttle.read_bps_device").read_text().split()
        write = (group.blkio_dir / "blkio.throttle.write_bps_device").read_text().split()
        assert read == [host.device, str(read_bps)]
        assert write == [host.device, str(write_bps)]
        # the wrapper's exec kept the pid: the child itself, and what it started, are inside
        assert {child.pid, grandchild} <= group.pids()
        lines = cgroups.splitlines()
        assert next(line for line in lines if ":memory:" in line).endswith(f"/{name}")
        assert next(line for line in lines if ":blkio:" in line).endswith(f"/{name}")
        child.kill()  # the child dies; its grandchild is left behind in the groups
        child.wait()
        assert grandchild in group.pids()
    assert not group.memory_dir.exists() and not group.blkio_dir.exists()
    assert _dead(grandchild), "a process was left running after the groups were removed"
    seen = group.report()
    assert seen["memory_limit_bytes"] == limit and seen["own_peak_bytes"] > 0


def test_an_interrupt_still_removes_every_group_and_process(host, tmp_path):
    with (
        pytest.raises(KeyboardInterrupt),
        NodeGroup(
            host, _group_name("interrupt"), memory_limit=None, read_bps=None, write_bps=None
        ) as group,
    ):
        child, grandchild, _ = _start_child(group, tmp_path / "report")
        raise KeyboardInterrupt
    child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    assert not group.memory_dir.exists() and not group.blkio_dir.exists()
    assert _dead(grandchild)


def test_a_daemon_left_by_a_finished_run_is_killed(host, tmp_path):
    pid_file = tmp_path / "daemon.pid"
    script = (
        "import subprocess, sys; d = subprocess.DEVNULL; "
        "p = subprocess.Popen(['sleep', '300'], stdin=d, stdout=d, stderr=d); "
        "open(sys.argv[1], 'w').write(str(p.pid))"
    )
    with NodeGroup(
        host, _group_name("daemon"), memory_limit=None, read_bps=None, write_bps=None
    ) as group:
        done = subprocess.run(group.wrap([sys.executable, "-c", script, str(pid_file)]))
        daemon = int(pid_file.read_text())
        assert done.returncode == 0 and daemon in group.pids()
    assert _dead(daemon) and not group.memory_dir.exists()


def test_the_limit_counts_the_page_cache(host, tmp_path):
    """Read a 48 MiB file twice: without a limit the second read hits the page cache; with a
    16 MiB limit the cache cannot hold the file, so the device serves both reads."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "blob").write_bytes(os.urandom(48 * MIB))
    read_twice = ["sh", "-c", f"cat {data / 'blob'} > /dev/null; cat {data / 'blob'} > /dev/null"]
    device_reads = {}
    for limit in (None, 16 * MIB):
        drop_from_page_cache(data)
        with NodeGroup(
            host, _group_name("cache"), memory_limit=limit, read_bps=None, write_bps=None
        ) as group:
            assert subprocess.run(group.wrap(read_twice)).returncode == 0
        device_reads[limit] = group.report()["device_read_bytes"]
        if limit is not None:
            assert group.report()["limit_hits"] > 0
            assert group.report()["page_cache_peak_bytes"] <= limit
    assert 48 * MIB <= device_reads[None] < 72 * MIB
    assert device_reads[16 * MIB] >= 90 * MIB


def test_refused_in_one_line_where_cgroups_are_missing(tmp_path):
    with pytest.raises(MachineError) as info:
        probe_host(tmp_path / "local", cgroup_root=tmp_path / "no-cgroups")
    message = str(info.value)
    assert "\n" not in message
    assert message == (
        f"node mode needs a cgroup v1 memory hierarchy; {tmp_path / 'no-cgroups' / 'memory'} "
        "has none"
    )


def test_refused_where_blkio_is_missing(tmp_path):
    root = tmp_path / "cgroups"
    (root / "memory").mkdir(parents=True)
    (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    with pytest.raises(MachineError, match=r"needs cgroup v1 blkio throttling; .* has none"):
        probe_host(tmp_path / "local", cgroup_root=root)


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm tmpfs here")
def test_refused_where_the_local_dir_is_on_no_block_device(host):
    local = Path("/dev/shm") / f"blaze-node-test-{os.getpid()}"
    try:
        with pytest.raises(MachineError, match=r"is on device \d+:\d+, which is no block device"):
            probe_host(local)
    finally:
        local.rmdir()


def test_the_command_refuses_in_one_line_before_spark(tmp_path):
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "blaze_cli", "bench", "--quick", "--disk", "cloud"),
            *("--cgroup-root", str(tmp_path / "none")),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"blaze: error: node mode needs a cgroup v1 memory hierarchy; "
        f"{tmp_path / 'none' / 'memory'} has none"
    ]
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"disk": "node", "mbps": 0.0}, "--disk-mbps 0.0 must be a positive bandwidth in MB/s"),
        ({"disk": "node", "mbps": -200.0}, "--disk-mbps -200.0 must be a positive bandwidth"),
        ({"disk": "node", "mbps": math.nan}, "--disk-mbps nan must be a positive bandwidth"),
        ({"disk": "node", "mbps": 1e-9}, "is below one byte per second"),
        ({"disk": "node"}, "--disk node needs --disk-mbps"),
        ({"disk": "cloud", "mbps": 300.0}, "--disk cloud fixes 200 MB/s"),
        ({"disk": "local", "page_cache_mib": 64.0}, "--page-cache applies to node mode only"),
        ({"disk": "fast"}, "unknown --disk 'fast'"),
        ({"disk": "nvme", "page_cache_mib": 0.0}, "--page-cache 0.0 must be a positive size"),
        ({"disk": "nvme", "page_cache_mib": 64.0 * 1024}, "is above this machine's memory"),
        (
            {"disk": "cloud", "app_memory_mib": 32.0 * 1024 - 64},
            "--app-memory 32704 MiB + --page-cache 64 MiB is above this machine's memory",
        ),
    ],
)
def test_bad_node_parameters_are_one_line(kwargs, message):
    with pytest.raises(InputError) as info:
        parse_node(**kwargs, machine_bytes=32 * GIB)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_named_points_and_defaults():
    cloud = parse_node("cloud", machine_bytes=32 * GIB)
    assert (cloud.read_bps, cloud.write_bps) == (POINTS["cloud"] * 10**6,) * 2
    assert cloud.page_cache_bytes == DEFAULT_PAGE_CACHE_MIB * MIB and cloud.app_memory_bytes is None
    node = parse_node(
        "node", mbps=350.0, page_cache_mib=128.0, app_memory_mib=2048.0, machine_bytes=32 * GIB
    )
    assert node.point == "node" and node.read_bps == 350 * 10**6
    assert node.limit_bytes(2048 * MIB) == (2048 + 128) * MIB
    assert parse_node("local", machine_bytes=32 * GIB) is None


def _small_plan_args(tmp_path: Path) -> dict:
    """One small job and policy: plans made only to check node parameters."""
    return dict(
        jobs="lr.expert",
        policies="mem_disk",
        scale=0.01,
        memory="30%",
        repeats=1,
        data_dir=tmp_path / "d",
        out_dir=tmp_path / "o",
    )


def test_bad_node_parameters_stop_the_plan(tmp_path, monkeypatch):
    """The plan (checked before any data or Spark) refuses what parse_node refuses, and a page
    cache that leaves no room for the application on this machine."""
    import jobs.plan

    monkeypatch.setattr(jobs.plan, "total_memory_bytes", lambda: 8 * GIB)
    common = _small_plan_args(tmp_path)
    with pytest.raises(InputError, match=r"--disk-mbps 0\.0 must be a positive"):
        make_plan(**common, disk="node", disk_mbps=0.0)
    with pytest.raises(InputError, match=r"plus the about 2\.5 GiB an application needs"):
        make_plan(**common, disk="cloud", page_cache_mib=6 * 1024.0)
    plan = make_plan(**common, disk="nvme", generator=2)
    assert plan.node.read_bps == 10**9 and plan.generator == 2
    assert not (tmp_path / "d").exists()


def test_a_run_the_memory_limit_killed_runs_again_without_the_limit_but_throttled(
    host, tmp_path, monkeypatch
):
    """The runner's node run with the application replaced by a process that touches 480 MiB:
    over the 400 MiB + page cache limit the kernel kills it; the second attempt runs in groups
    with no memory limit and the same disk throttle, finishes, and the record keeps why."""
    from jobs import runner

    plan = make_plan(**_small_plan_args(tmp_path), disk="cloud")
    (tmp_path / "input").mkdir()
    monkeypatch.setattr(runner, "ensure_dataset", lambda data_dir, spec: tmp_path / "input")
    throttles = []

    def touch_480_mib(plan, cell, group=None):
        throttles.append((group.read_bps, group.write_bps))
        # held for a few of the sampler's 0.1 s ticks, so the peak it records is the hog's
        hold = "import time; b = b'x' * (480 << 20); time.sleep(0.5); print(len(b))"
        hog = [sys.executable, "-c", hold]
        code = subprocess.run(group.wrap(hog), capture_output=True).returncode
        return {"job": cell.job, "policy": cell.policy, "status": "ok" if code == 0 else "failed"}

    monkeypatch.setattr(runner, "_launch", touch_480_mib)
    outcome = runner.BenchOutcome(plan)
    outcome.node_host = host
    outcome.app_memory["lr"] = 400 * MIB
    cell = runner.Cell("lr.expert", "mem_disk", None, tmp_path / "run")
    record = runner._node_run(outcome, cell, sizing=False)
    assert record["status"] == "ok"
    first = record["node"]["unlimited_rerun"]["first_attempt"]
    assert "killed by the node's memory limit" in first and "limit 464 MiB" in first
    assert record["node"]["memory_limit_bytes"] is None
    assert record["node"]["own_peak_bytes"] > 400 * MIB
    assert throttles == [(plan.node.read_bps, plan.node.write_bps)] * 2
    assert record["node"]["oom_kills"] == 0
