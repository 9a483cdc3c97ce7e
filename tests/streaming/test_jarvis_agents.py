"""Jarvis agent processes stop by themselves (no JVM needed)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

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
