"""Fault matrix, executor row: an executor JVM killed (SIGKILL) mid-job on
``local-cluster[2,1,1024]``, with the cache manager attached.

Plain Spark's answer is known independently (a sum); Spark reruns the lost tasks and the
worker starts a replacement executor. The manager must keep working: no errors, the blocks
that died with the executor leave its ledger at the next job end (a resync correction), and
later jobs still read the cache. Only executors of this test's own application are killed
(matched by its application id on their command line).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCRIPT = r"""
import json, os, signal, sys, threading, time
import blaze

spark = blaze.session(
    {"spark.master": "local-cluster[2,1,1024]", "spark.executor.memory": "768m"},
    app_name="blaze-fault-executor-kill",
)
sc = spark.sparkContext
deadline = time.time() + 180
while sc._jsc.sc().getExecutorMemoryStatus().size() < 3:
    if time.time() > deadline:
        sys.exit("executors did not register")
    time.sleep(0.2)
app_id = sc.applicationId
manager = blaze.attach(spark, policy="blaze", disk_write_ms_per_mib=1, disk_read_ms_per_mib=1)
PARTS, N = 8, 40000
data = sc.parallelize(range(N), PARTS).map(lambda x: (x, "v" * 20)).persist(blaze.BLAZE)
expected = sum(range(N))
answers = [data.map(lambda kv: kv[0]).sum()]

def executor_pids():
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if b"org.apache.spark.executor.CoarseGrainedExecutorBackend" in cmd and \
                app_id.encode() in cmd:
            pids.append(int(pid))
    return pids

victims = executor_pids()
assert len(victims) == 2, victims

def slow_job():
    def slow(rows):  # 8 partitions x 1.5 s on 2 one-core executors: about 6 s in all
        time.sleep(1.5)
        return (kv[0] for kv in rows)
    answers.append(data.mapPartitions(slow).sum())

job = threading.Thread(target=slow_job)
job.start()
time.sleep(3.0)  # mid-job
os.kill(victims[0], signal.SIGKILL)
job.join(300)
killed_mid_job = job.is_alive() is False
answers.append(data.map(lambda kv: kv[0]).sum())
answers.append(data.map(lambda kv: kv[0]).sum())
report = manager.report()
print("RESULT " + json.dumps({
    "answers": answers, "expected": expected, "report": report,
    "attached": manager.attached, "finished": killed_mid_job,
}), flush=True)
spark.stop()
"""


@pytest.mark.timeout(600)
def test_executor_killed_mid_job_same_answer_manager_carries_on(tmp_path):
    script = tmp_path / "kill_executor.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=560
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    [line] = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    result = json.loads(line[len("RESULT ") :])
    assert result["finished"]
    assert result["answers"] == [result["expected"]] * 4
    report = result["report"]
    assert result["attached"] and report["errors"] == {}
    assert report["resync_corrections"] >= 1  # the dead executor's blocks left the ledger
    assert report["hits"] >= 1  # the surviving executor's blocks were still read
