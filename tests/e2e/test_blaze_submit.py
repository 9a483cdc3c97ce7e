"""An unmodified PySpark program under ``spark-submit --conf spark.blaze.enabled=true``.

The program below never imports blaze: the manager arrives only through the startup hook
installed with the package (``blaze-spark.pth``). Both runs (with and without the flag) start
at once to halve the wall time on a 2-core machine. ``spark-submit`` runs the Python driver
with its stderr merged into stdout, so the manager's log line is searched in both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyspark
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPARK_SUBMIT = Path(pyspark.__file__).parent / "bin" / "spark-submit"

APP = """
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("plain-wordcount").getOrCreate()
sc = spark.sparkContext
lines = sc.parallelize(["a b c", "b c d", "c d e", "e f"] * 500, 4)
pairs = lines.flatMap(lambda s: s.split()).map(lambda w: (w, 1))  # reused, never cached
sizes = []
for i in range(4):
    sizes.append(pairs.filter(lambda kv, i=i: kv[0] != "abcdef"[i]).count())
counts = sorted(pairs.reduceByKey(lambda a, b: a + b).collect())
print("RESULT", sizes, counts, flush=True)
spark.stop()
"""


def _submit(app: Path, *confs: str) -> subprocess.Popen:
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    env.pop("BLAZE_SPARK_STARTUP", None)
    command = [str(SPARK_SUBMIT), "--master", "local[1]", "--conf", "spark.ui.enabled=false"]
    for conf in confs:
        command += ["--conf", conf]
    return subprocess.Popen(
        [*command, str(app)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=app.parent,
    )


def _finish(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"spark-submit timed out:\n{err[-3000:]}")
    assert proc.returncode == 0, err[-3000:]
    return out, err


def _result_line(out: str) -> str:
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, out
    return lines[0]


def test_unmodified_program_is_managed_with_the_flag_and_output_is_unchanged(tmp_path):
    app = tmp_path / "wordcount.py"
    app.write_text(APP)
    assert "blaze" not in APP
    plain = _submit(app)
    managed = _submit(app, "spark.blaze.enabled=true", "spark.blaze.disk.writeMsPerMiB=1")
    plain_out, plain_err = _finish(plain)
    managed_out, managed_err = _finish(managed)

    assert _result_line(managed_out) == _result_line(plain_out)
    # spark-submit's PythonRunner merges the driver's stderr into its stdout
    assert "blaze report:" not in plain_out + plain_err
    managed_log = (managed_out + managed_err).splitlines()
    [report_line] = [line for line in managed_log if line.startswith("blaze report: ")]
    report = json.loads(report_line.split("blaze report: ", 1)[1])
    assert report["policy"] == "blaze"
    assert report["decisions"]["auto_cache"] >= 1  # it acted on the reused RDD
    assert report["hits"] >= 4  # and later jobs read the cache it chose
    assert report["errors"] == {}
    # attached for the run, and detached by spark.stop()
    assert report["attached"] is True and report["detached_at"] is not None


def test_bad_blaze_setting_stops_the_program_with_one_line(tmp_path):
    app = tmp_path / "wordcount.py"
    app.write_text(APP)
    proc = _submit(app, "spark.blaze.enabled=true", "spark.blaze.policy=fastest")
    out, err = proc.communicate(timeout=240)
    assert proc.returncode != 0
    assert "spark.blaze.policy='fastest' is not one of" in out + err
    assert "RESULT" not in out
