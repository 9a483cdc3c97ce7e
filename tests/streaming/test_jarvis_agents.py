"""Jarvis agent processes and work directories never outlive their run (no JVM needed)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from streaming.jarvis.lifecycle import (
    RUN_PREFIX,
    create_run_dir,
    descendants,
    process_start_time,
    sweep_stale_runs,
)
from streaming.jarvis.report import BIN_S, _convergence

SHAPE = {"num_servers": 200}


def _gone(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        state = next(x for x in status.read_text().splitlines() if x.startswith("State:"))
    except (FileNotFoundError, StopIteration):
        return True
    return "Z" in state.split()[1]


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.1)
    return False


def test_agent_exits_when_its_parent_dies(tmp_path):
    script = textwrap.dedent(
        f"""
        import os
        from streaming.jarvis.harness import AgentSupervisor
        from streaming.jarvis.query import default_query
        sup = AgentSupervisor({str(tmp_path)!r}, default_query(), strategy="jarvis",
                              cpu_budget=0.01, bandwidth=1e6, interval_s=0.2,
                              max_runtime_s=60, telemetry={SHAPE!r})
        proc = sup.start(0)
        sup.go()
        print(proc.pid, flush=True)
        os._exit(0)  # the harness dies without stopping its agent
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    agent_pid = int(out.stdout.split()[-1])
    assert _wait_gone(agent_pid, 30), "orphaned agent kept running"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_sigkilled_run_leaves_no_process_and_no_work_dir(tmp_path):
    """A real run (harness, watchdog, two agents) is SIGKILLed mid-stream: its agents, its
    watchdog and its work directory must all be gone shortly after."""
    script = textwrap.dedent(
        f"""
        from streaming.jarvis.harness import RunSpec, run_experiment
        spec = RunSpec("jarvis", 2, 120.0, 0.01, 1e6, interval_s=0.2,
                       telemetry={SHAPE!r})
        run_experiment(spec, base_dir={str(tmp_path)!r})
        """
    )
    run = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while not any(tmp_path.glob(f"{RUN_PREFIX}{run.pid}-*/agent001/stats.jsonl")):
            assert run.poll() is None, run.stderr.read().decode()
            assert time.monotonic() < deadline, "the run did not start its agents"
            time.sleep(0.2)
        (workdir,) = tmp_path.glob(f"{RUN_PREFIX}{run.pid}-*")
        started = descendants(run.pid)
        roles = [_cmdline(pid) for pid in started]
        assert sum("streaming.jarvis.agent" in c for c in roles) == 2
        assert sum("streaming.jarvis.watchdog" in c for c in roles) == 1
        run.send_signal(signal.SIGKILL)
        run.wait(10)
        for pid in started:
            assert _wait_gone(pid, 30), f"left running after SIGKILL: {_cmdline(pid)}"
        deadline = time.monotonic() + 10
        while workdir.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not workdir.exists(), "work directory survived the SIGKILL"
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(10)


def test_stale_run_dirs_are_swept_and_live_or_foreign_ones_kept(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    start = None
    while start is None:  # read its start time while it still runs
        start = process_start_time(gone.pid)
    gone.wait(10)
    stale = tmp_path / f"{RUN_PREFIX}{gone.pid}-{start}-jarvis-x1"
    (stale / "spool").mkdir(parents=True)
    mine = create_run_dir(tmp_path, "jarvis")
    reused = tmp_path / f"{RUN_PREFIX}{os.getpid()}-{process_start_time(os.getpid()) + 1}-x2"
    reused.mkdir()  # this pid, another start time: an earlier process that had the same pid
    foreign = tmp_path / "jarvis-jarvis-abc"  # not named by create_run_dir: never touched
    foreign.mkdir()
    assert sorted(sweep_stale_runs(tmp_path)) == sorted([stale, reused])
    assert mine.is_dir() and foreign.is_dir()
    assert not stale.exists() and not reused.exists()


def test_agent_whose_parent_is_already_gone_exits_at_once():
    script = (
        "import sys; from streaming.jarvis.lifecycle import die_with_parent; "
        "sys.exit(3 if die_with_parent(1) else 0)"
    )
    assert subprocess.run([sys.executable, "-c", script], timeout=60).returncode == 0


@pytest.mark.parametrize(
    ("rates", "expected"),
    [
        ([10.0] * 4 + [50.0, 80.0, 98.0, 101.0, 100.0, 99.0, 100.0, 100.0], 6),
        ([100.0] * 12, 0),
        ([0.0, 300.0, 0.0, 300.0, 0.0, 300.0, 0.0, 300.0], None),
    ],
)
def test_convergence_time_definition(rates, expected):
    import numpy as np

    """``expected`` is the first bin (BIN_S seconds each) from which throughput stays steady."""
    t = np.arange(len(rates)) * BIN_S + BIN_S / 2
    got = _convergence(t, np.asarray(rates), 0.0, len(rates) * BIN_S)
    assert got == (None if expected is None else expected * BIN_S)


def test_an_agent_at_a_tiny_budget_ships_steadily_and_spends_its_cpu_on_records(tmp_path):
    """At 0.01 core and 0.2 s intervals (2 ms of CPU per interval) an entry per interval cost
    about the whole budget: agents went 30-60 s without shipping. Entries now cover several
    intervals there, so the fixed cost stays a small share and an entry leaves at least
    every second (plus two intervals of slack)."""
    from streaming.jarvis.harness import RunSpec, run_experiment

    spec = RunSpec("jarvis", 1, 8.0, 0.01, 1e6, interval_s=0.2, telemetry=SHAPE)
    result = run_experiment(spec, base_dir=tmp_path)
    assert not result.deaths
    lines = sorted(result.stats, key=lambda line: line["t"])
    shipped = [line for line in lines if line["records"] > 0]
    assert len(shipped) >= 3, lines[-3:]

    # between two entries, the intervals spent repaying CPU debt (an overrun: a slow first
    # chunk or write) are the budget at work, not a stall; the others are at most 1 s + slack
    def repaying(a, b):
        return sum(
            1 for line in lines if a["t"] < line["t"] < b["t"] and line["cpu_allowance_s"] <= 0
        )

    gaps = [
        b["t"] - a["t"] - repaying(a, b) * spec.interval_s for a, b in itertools.pairwise(shipped)
    ]
    assert max(gaps) <= 1.0 + 2 * spec.interval_s, gaps
    used = sum(line["cpu_used_s"] for line in lines)
    flush = sum(line["flush_cpu_s"] for line in lines)
    # the budget is spent (not left idle by a stalled agent), mostly on records
    assert used >= 0.5 * spec.cpu_budget * spec.interval_s * len(lines), (used, len(lines))
    assert flush <= 0.45 * used, (flush, used)
    # the entries cover the input from record 0 on, contiguously, nothing twice
    assert sum(line["records"] for line in shipped) == shipped[-1]["next_record"]
