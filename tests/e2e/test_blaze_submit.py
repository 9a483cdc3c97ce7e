"""An unmodified PySpark program under ``spark-submit --conf spark.blaze.enabled=true``.

The program below never imports blaze: the manager arrives only through the startup hook
installed with the package (``blaze-spark.pth``). Runs that are compared start at once to
halve the wall time on a 2-core machine. ``spark-submit`` runs the Python driver with its
stderr merged into spark-submit's stdout, so anything the manager printed from Python would
show up in the program's output; its lines must appear only in Spark's log4j output
(spark-submit's stderr).
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

SPARK_BIN = Path(pyspark.__file__).parent / "bin"
SPARK_SUBMIT = SPARK_BIN / "spark-submit"
VENV = Path(sys.prefix)

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
print("second line of output", flush=True)
spark.stop()
"""


def _env() -> dict[str, str]:
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    env.pop("BLAZE_SPARK_STARTUP", None)
    return env


def _submit(app: Path, *confs: str) -> subprocess.Popen:
    command = [str(SPARK_SUBMIT), "--master", "local[1]", "--conf", "spark.ui.enabled=false"]
    for conf in confs:
        command += ["--conf", conf]
    return subprocess.Popen(
        [*command, str(app)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
        cwd=app.parent,
    )


def _finish(proc: subprocess.Popen, expect: int = 0) -> tuple[bytes, str]:
    try:
        out, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"spark-submit timed out:\n{err[-3000:]!r}")
    text = err.decode(errors="replace")
    assert proc.returncode == expect, text[-3000:]
    return out, text


def _report_from_log(err: str) -> dict:
    lines = [line for line in err.splitlines() if " INFO blaze: blaze report: " in line]
    assert len(lines) == 1, err[-3000:]
    return json.loads(lines[0].split("blaze report: ", 1)[1])


@pytest.mark.timeout(300)
def test_flag_leaves_stdout_byte_identical_and_reports_through_log4j(tmp_path):
    app = tmp_path / "wordcount.py"
    app.write_text(APP)
    assert "blaze" not in APP
    report_path = tmp_path / "out" / "report.json"
    plain = _submit(app)
    managed = _submit(
        app,
        "spark.blaze.enabled=true",
        "spark.blaze.disk.writeMsPerMiB=1",
        f"spark.blaze.report.path={report_path}",
    )
    plain_out, plain_err = _finish(plain)
    managed_out, managed_err = _finish(managed)

    assert managed_out == plain_out  # byte for byte
    assert plain_out.decode().startswith("RESULT ")
    assert b"blaze" not in managed_out
    assert "blaze" not in plain_err
    # the manager's lines sit with Spark's own log4j lines
    [attached] = [line for line in managed_err.splitlines() if "attached policy=" in line]
    assert " INFO blaze: " in attached
    report = _report_from_log(managed_err)
    assert report["policy"] == "blaze"
    assert report["decisions"]["auto_cache"] >= 1  # it acted on the reused RDD
    assert report["hits"] >= 4  # and later jobs read the cache it chose
    assert report["errors"] == {}
    # attached for the run, and detached by spark.stop()
    assert report["attached"] is True and report["detached_at"] is not None
    # the same report as a strict JSON file
    text = report_path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == report


BAD_CONFS = [
    ("spark.blaze.policy=bogus", "spark.blaze.policy='bogus' is not one of"),
    ("spark.blaze.memoryBudget=-5", "spark.blaze.memoryBudget='-5' is not a size"),
    ("spark.blaze.enabled=maybe", "spark.blaze.enabled='maybe' is not allowed"),
    ("spark.blaze.disk.writeMsPerMiB=nan", "spark.blaze.disk.writeMsPerMiB='nan' is not allowed"),
    ("spark.blaze.enable=true", "unknown setting spark.blaze.enable "),  # flag itself off
]


@pytest.mark.timeout(300)
def test_bad_blaze_setting_stops_the_program_with_one_line_and_exit_2(tmp_path):
    app = tmp_path / "wordcount.py"
    app.write_text(APP)
    procs = []
    for conf, _ in BAD_CONFS:
        procs.append(_submit(app, conf))
    for proc, (conf, fragment) in zip(procs, BAD_CONFS, strict=True):
        out, err = _finish(proc, expect=2)
        assert out == b"", (conf, out)
        assert "Traceback" not in err and "Exception" not in err, err
        [line] = [line for line in err.splitlines() if "blaze" in line]
        assert line.startswith("blaze: ") and fragment in line, (conf, line)


@pytest.mark.timeout(200)
def test_bad_blaze_setting_in_the_pyspark_shell_exits_2_with_one_line(tmp_path):
    proc = subprocess.run(
        [str(SPARK_BIN / "pyspark"), "--master", "local[1]", "--conf", "spark.blaze.policy=x"],
        input=b"print('SHELL ALIVE')\n",
        capture_output=True,
        # -i: the shell's start-up file runs as at a terminal although stdin is a pipe
        env=dict(_env(), PYSPARK_DRIVER_PYTHON_OPTS="-i"),
        cwd=tmp_path,
        timeout=180,
    )
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 2, err[-3000:]
    assert b"SHELL ALIVE" not in proc.stdout
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if "blaze" in line]
    assert line.startswith("blaze: spark.blaze.policy='x' is not one of")


@pytest.mark.timeout(200)
def test_readme_spark_submit_example_works_as_written(tmp_path):
    """README: ``source .venv/bin/activate`` then ``spark-submit --conf ... app.py`` — with
    nothing of the environment on PATH beforehand and no PYSPARK_* variables."""
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "SPARK_"))}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    env.pop("VIRTUAL_ENV", None)
    script = (
        f"source {VENV}/bin/activate\n"
        "spark-submit --conf spark.blaze.enabled=true --conf spark.ui.enabled=false app.py\n"
    )
    proc = subprocess.run(
        ["bash", "-c", script], capture_output=True, env=env, cwd=tmp_path, timeout=180
    )
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err[-3000:]
    assert proc.stdout.decode().startswith("RESULT [")
    assert _report_from_log(err)["policy"] == "blaze"  # the hook ran in the venv's python
