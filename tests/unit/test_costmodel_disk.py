"""W, Rd and the hit costs: the probe (as Spark writes, no fsync, in the configured local dir,
read back from the device) and its online correction from the application's own traffic."""

from __future__ import annotations

import os
import tempfile
import time

import pytest

from blaze.config import local_dir_of
from blaze_cli import main as blaze_main
from blaze_errors import BlazeError
from costmodel.disk import (
    DiskCost,
    OnlineDiskCost,
    calibrate_disk,
    disk_cost_from_config,
    measure_disk,
)

MIB = 1 << 20


@pytest.fixture
def probe_calls(monkeypatch):
    """Records the probe's system calls; ``fdatasync`` sleeps, so a write timed with it would
    show it, and ``fsync`` must never run."""
    calls: list[tuple] = []
    real_mkstemp, real_fadvise, real_fdatasync = (
        tempfile.mkstemp,
        getattr(os, "posix_fadvise", None),
        os.fdatasync,
    )

    def mkstemp(*args, **kwargs):
        calls.append(("mkstemp", kwargs.get("dir")))
        return real_mkstemp(*args, **kwargs)

    def fsync(fd):
        calls.append(("fsync",))
        raise AssertionError("Spark's disk store never fsyncs: neither may the probe")

    def fdatasync(fd):
        calls.append(("fdatasync",))
        time.sleep(0.4)
        real_fdatasync(fd)

    def fadvise(fd, offset, length, advice):
        calls.append(("fadvise", advice))
        if real_fadvise is not None:
            real_fadvise(fd, offset, length, advice)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "fdatasync", fdatasync)
    if real_fadvise is not None:
        monkeypatch.setattr(os, "posix_fadvise", fadvise)
    return calls


def test_probe_writes_without_fsync_in_the_local_dir_and_reads_back_cold(tmp_path, probe_calls):
    cost = measure_disk(tmp_path, size_mib=2)
    assert ("mkstemp", tmp_path) in probe_calls
    assert ("fsync",) not in probe_calls
    assert cost.local_dir == str(tmp_path.resolve())
    assert not list(tmp_path.iterdir())  # the probe file is gone
    # the flush that empties the page cache before the read is not part of W: it sleeps
    # 0.4 s here, and 2 MiB of buffered writes take far less
    assert cost.write_ms_per_mib * 2 < 400
    if hasattr(os, "posix_fadvise"):
        assert probe_calls.index(("fdatasync",)) < probe_calls.index(
            ("fadvise", os.POSIX_FADV_DONTNEED)
        )
        assert cost.read_mode == "cold"
    assert cost.write_ms_per_mib > 0 and cost.read_ms_per_mib > 0


def test_calibration_measures_every_time_and_adds_the_deserialization_cost(tmp_path):
    first = calibrate_disk(tmp_path, size_mib=1)
    second = calibrate_disk(tmp_path, size_mib=1)
    assert first.source == second.source == "measured"  # no figure kept between attaches
    assert first.deserialize_ms_per_mib > 0
    size = 3 * MIB
    assert first.memory_hit_ms(size) == pytest.approx(3 * first.deserialize_ms_per_mib)
    assert first.disk_hit_ms(size) == pytest.approx(first.read_ms(size) + first.memory_hit_ms(size))


def test_the_probe_runs_in_the_directory_spark_stores_blocks_in(tmp_path, monkeypatch):
    monkeypatch.delenv("SPARK_LOCAL_DIRS", raising=False)
    conf = {"spark.local.dir": f"{tmp_path}/a,{tmp_path}/b"}
    assert local_dir_of(conf) == f"{tmp_path}/a"
    monkeypatch.setenv("SPARK_LOCAL_DIRS", str(tmp_path / "env"))
    assert local_dir_of(conf) == str(tmp_path / "env")  # Spark prefers the environment
    monkeypatch.delenv("SPARK_LOCAL_DIRS")
    assert local_dir_of({}) == tempfile.gettempdir()


def test_conf_override_skips_or_completes_the_measurement(tmp_path):
    both = disk_cost_from_config(3.0, 4.0, tmp_path / "never-used")
    assert (both.write_ms_per_mib, both.read_ms_per_mib, both.source) == (3.0, 4.0, "conf")
    one = disk_cost_from_config(3.0, None, tmp_path, size_mib=1)
    assert one.write_ms_per_mib == 3.0 and one.read_ms_per_mib > 0
    assert one.source == "conf+measured"


def test_missing_local_dir_is_named(tmp_path):
    with pytest.raises(BlazeError, match="does not exist"):
        calibrate_disk(tmp_path / "missing")


def test_online_correction_follows_the_applications_own_transfers():
    probe = DiskCost(10.0, 20.0, source="measured", deserialize_ms_per_mib=3.0)
    online = OnlineDiskCost(probe, prior_mib=8.0, window_mib=1e9, tolerance=0.0)
    assert not online.observe_write(100 * 1024, 50.0)  # too small: a per-call overhead
    assert online.current() is probe
    for _ in range(8):  # 64 MiB written at 1 ms/MiB: the probe's 8 MiB count for little
        online.observe_write(8 * MIB, 8.0)
    now = online.current()
    assert now.write_ms_per_mib == pytest.approx((10.0 * 8 + 64.0) / (8 + 64))
    assert now.read_ms_per_mib == 20.0 and now.deserialize_ms_per_mib == 3.0
    assert now.source == "measured+online"
    online.observe_read(8 * MIB, 8 * 200.0)  # reads far slower than the probe's
    assert online.current().read_ms_per_mib == pytest.approx((20.0 * 8 + 1600.0) / 16)
    assert online.report()["observed_write_mib"] == 64.0


def test_a_small_move_keeps_the_current_figure_and_a_conf_figure_is_never_corrected():
    online = OnlineDiskCost(DiskCost(10.0, 10.0, source="measured"), tolerance=0.5)
    assert not online.observe_write(MIB, 12.0)  # 10 -> 10.2 ms/MiB: within tolerance
    fixed = OnlineDiskCost(DiskCost(10.0, 10.0, source="conf"))
    assert not fixed.observe_write(64 * MIB, 1.0)
    assert fixed.current().write_ms_per_mib == 10.0


def test_negative_disk_cost_is_rejected():
    with pytest.raises(ValueError, match="write_ms_per_mib"):
        DiskCost(-1.0, 1.0)


def test_cli_calibrate(tmp_path, capsys):
    assert blaze_main(["disk", "calibrate", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "write" in out and "read" in out and "deserialize" in out
