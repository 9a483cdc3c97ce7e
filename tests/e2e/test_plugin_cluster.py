"""The manager on a multi-executor Spark, its decisions carried out on every executor through
the JVM plugin: on ``local-cluster[2,1,1024]`` and on a standalone cluster (a master and two
workers started from the PySpark install, loopback only).

One program per cluster kind (in a subprocess: a process holds one SparkContext; started once
per kind by a module-scoped fixture, since a cluster's start-up is most of its cost), each
test reading one property of its run. In order:

1. both executors' plugin halves register with the driver half (the executors are separate
   JVMs that get the plugin's classes only through ``spark.jars``);
2. ``mem_disk`` with a budget per executor of two blocks: each executor's cached memory stays
   within it, and the spills are carried out on the executor that holds the block (a spill
   used to degrade to a drop on a cluster) and read back from its disk, never recomputed;
3. Blaze squeezed: a costly reused dataset and a cheap larger one, under a budget per
   executor that holds neither whole;
4. an executor SIGKILLed mid-job: Spark reruns the lost tasks, the manager keeps working,
   the dead executor's blocks leave its ledger at the next job end (a resync correction) and
   later jobs still read the cache.

Plain Spark's answers are known independently (sums).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import finish_script, printed_json, start_script

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCRIPT = r"""
import json, os, signal, sys, threading, time
import blaze
from blaze.plugin import registered_executors

master = sys.argv[1]
spark = blaze.session(
    {"spark.master": master, "spark.executor.memory": "768m", "spark.executor.cores": "1",
     "spark.cores.max": "2", "spark.ui.enabled": "false", "spark.blaze.enabled": "false"},
    app_name="blaze-plugin-cluster",
)
sc = spark.sparkContext
deadline = time.time() + 180
while len(registered_executors(spark)) < 2:
    if time.time() > deadline:
        sys.exit("executors did not register: %s" % registered_executors(spark))
    time.sleep(0.2)
app_id = sc.applicationId
registered = registered_executors(spark)
jars = sc.getConf().get("spark.jars")

# ---- mem_disk: a budget per executor, spills carried out where the block lives ----
from blaze._jvm import JvmBridge
bridge = JvmBridge(sc)
MD_PARTS = 8
md_counters = [sc.accumulator(0) for _ in range(MD_PARTS)]

def md_dataset():
    def tag(split, rows):
        md_counters[split].add(1)
        return ((x, "v" * 20) for x in rows)
    return sc.parallelize(range(40000), MD_PARTS).mapPartitionsWithIndex(tag)

md = blaze.attach(spark, policy="mem_disk", disk_write_ms_per_mib=1, disk_read_ms_per_mib=1)
md_probe = md_dataset().persist(blaze.BLAZE)
md_probe.count()
md.sync()
md_size = max(max(b.memory_size, b.disk_size) for s in bridge.storage_status() for b in s.blocks)
md.detach()
md_probe.unpersist(blocking=True)
for c in md_counters:
    c.value = 0
md_budget = int(md_size * 2.5)  # two blocks per executor
md = blaze.attach(spark, policy="mem_disk", memory_budget=md_budget,
                  disk_write_ms_per_mib=1, disk_read_ms_per_mib=1)
md_data = md_dataset().persist(blaze.BLAZE)
md_first = md_data.map(lambda kv: kv[0]).sum()
md.sync()
md_placement = {
    split: [[s.executor_id, s.memory_size, s.disk_size]
            for s in bridge.block_status(md_data.id(), split)]
    for split in range(MD_PARTS)
}
md_memory = {}
for status in bridge.storage_status():
    md_memory[status.executor_id] = sum(
        b.memory_size for b in status.blocks if b.rdd_id == md_data.id())
md_once = [c.value for c in md_counters]
md_second = md_data.map(lambda kv: kv[0]).sum()
md.sync()
mem_disk = {
    "first": md_first, "second": md_second, "expected": sum(range(40000)),
    "size": md_size, "budget": md_budget, "placement": md_placement,
    "memory_by_executor": md_memory, "computed_once": md_once,
    "computed_twice": [c.value for c in md_counters], "report": md.report(),
}
md.detach()
md_data.unpersist(blocking=True)

# ---- Blaze squeezed ----
PARTS = 4
DISK = {"disk_write_ms_per_mib": 2000, "disk_read_ms_per_mib": 2000}

def costly(runs):
    def tag(split, rows):
        runs[split].add(1)
        time.sleep(1.0)
        return ((x, str(x) * 4) for x in rows)
    return sc.parallelize(range(2000 * PARTS), PARTS).mapPartitionsWithIndex(tag)

def cheap(runs):
    def tag(split, rows):
        runs[split].add(1)
        return ((x, str(x) * 40) for x in rows)  # large for its compute time
    return sc.parallelize(range(12000 * PARTS), PARTS).mapPartitionsWithIndex(tag)

def counters():
    return [sc.accumulator(0) for _ in range(PARTS)]

def sizes(manager, rdd_id):
    manager.sync()
    return {b.split_index: max(b.memory_size, b.disk_size)
            for s in manager._bridge.storage_status() for b in s.blocks if b.rdd_id == rdd_id}

# probe: the partition sizes, with room for everything
probe = blaze.attach(spark, policy="blaze", **DISK)
a, b = costly(counters()).persist(blaze.BLAZE), cheap(counters()).persist(blaze.BLAZE)
a.count(), b.count()
costly_part, cheap_part = max(sizes(probe, a.id()).values()), max(sizes(probe, b.id()).values())
probe.detach()
a.unpersist(blocking=True), b.unpersist(blocking=True)

budget = int(1.5 * costly_part)  # one costly partition per executor, no cheap one
manager = blaze.attach(spark, policy="blaze", memory_budget=budget, **DISK)
costly_runs, cheap_runs = counters(), counters()
a, b = costly(costly_runs).persist(blaze.BLAZE), cheap(cheap_runs).persist(blaze.BLAZE)
answers = []
for _ in range(3):
    answers.append(a.map(lambda kv: kv[0]).sum())
    answers.append(b.map(lambda kv: kv[0]).sum())
manager.sync()
placement = {}
for s in manager._bridge.storage_status():
    for blk in s.blocks:
        if blk.rdd_id in (a.id(), b.id()):
            placement.setdefault(str(blk.rdd_id), {})[str(blk.split_index)] = [
                s.executor_id, blk.memory_size, blk.disk_size]
squeezed = {
    "answers": answers, "costly_runs": [r.value for r in costly_runs],
    "cheap_runs": [r.value for r in cheap_runs], "costly_id": a.id(), "cheap_id": b.id(),
    "explain_costly": manager.explain(a), "explain_cheap": manager.explain(b),
    "report": manager.report(), "placement": placement, "budget": budget,
    "costly_part": costly_part, "cheap_part": cheap_part,
}

# an executor SIGKILLed mid-job
def executor_pids():
    pids = []
    for pid in os.listdir("/proc"):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if b"org.apache.spark.executor.CoarseGrainedExecutorBackend" in cmd and \
                app_id.encode() in cmd:
            pids.append(int(pid))
    return pids

killed = []
def slow_sum():
    def slow(rows):
        time.sleep(1.5)
        return (kv[0] for kv in rows)
    killed.append(a.mapPartitions(slow).sum())
job = threading.Thread(target=slow_sum)
job.start()
time.sleep(2.0)
victims = executor_pids()
os.kill(victims[0], signal.SIGKILL)
job.join(300)
killed.append(a.map(lambda kv: kv[0]).sum())
killed.append(b.map(lambda kv: kv[0]).sum())
manager.sync()
print("RESULT " + json.dumps({
    "registered": registered, "jars": jars, "mem_disk": mem_disk, "squeezed": squeezed, "after_kill": killed, "kill_report": manager.report(),
    "attached": manager.attached, "executors_seen": len(victims),
    "expected": [sum(range(2000 * PARTS)), sum(range(12000 * PARTS))],
}), flush=True)
spark.stop()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spark_home() -> str:
    import pyspark

    return os.path.dirname(os.path.abspath(pyspark.__file__))


class _Standalone:
    """A master and two one-core workers on loopback, stopped by their process ids."""

    def __init__(self, workdir: Path) -> None:
        home = _spark_home()
        env = dict(
            os.environ,
            SPARK_HOME=home,
            SPARK_LOCAL_IP="127.0.0.1",
            SPARK_WORKER_DIR=str(workdir / "work"),
        )
        port = _free_port()
        self.url = f"spark://127.0.0.1:{port}"
        spark_class = [os.path.join(home, "bin", "spark-class")]
        self.procs = [
            subprocess.Popen(
                [
                    *spark_class,
                    "org.apache.spark.deploy.master.Master",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--webui-port",
                    str(_free_port()),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        ]
        deadline = time.time() + 60
        while not _listening(port):
            if time.time() > deadline:
                self.stop()
                pytest.fail("the standalone master did not start")
            time.sleep(0.2)
        for _ in range(2):
            self.procs.append(
                subprocess.Popen(
                    [
                        *spark_class,
                        "org.apache.spark.deploy.worker.Worker",
                        "--host",
                        "127.0.0.1",
                        "--cores",
                        "1",
                        "--memory",
                        "1g",
                        "--webui-port",
                        str(_free_port()),
                        self.url,
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _run(master: str, workdir: Path) -> dict:
    finished = finish_script(start_script(workdir, "plugin_cluster_app.py", SCRIPT, master), 900)
    result = printed_json(finished)
    result["driver_log"] = finished[2]
    return result


@pytest.fixture(scope="module", params=["local-cluster", "standalone"])
def run(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(request.param)
    if request.param == "local-cluster":
        yield _run("local-cluster[2,1,1024]", workdir)
        return
    cluster = _Standalone(workdir)
    try:
        yield _run(cluster.url, workdir)
    finally:
        cluster.stop()


@pytest.mark.timeout(1200)
def test_answers_equal_plain_spark_and_spark_never_evicts_a_managed_block(run):
    squeezed = run["squeezed"]
    costly, cheap = run["expected"]
    assert squeezed["answers"] == [costly, cheap] * 3
    report = squeezed["report"]
    assert report["plugin"] and report["executors_without_plugin"] == []
    assert report["spark_evictions"] == 0, report
    assert report["errors"] == {}


@pytest.mark.timeout(1200)
def test_costly_computed_once_spilled_read_from_disk_cheap_dropped(run):
    squeezed = run["squeezed"]
    assert squeezed["costly_runs"] == [1] * 4, squeezed
    report = squeezed["report"]
    assert sum(squeezed["cheap_runs"]) > 4, report["decisions"]  # some cheap ones recomputed
    assert report["decisions"].get("spill_to_disk", 0) >= 1, report["decisions"]
    assert report["order_outcomes"].get("spill_spilled", 0) >= 1, report["order_outcomes"]
    assert report["disk_hits"] >= 1 and report["disk_bytes_read"] > 0
    history = [e for p in squeezed["explain_cheap"]["partitions"].values() for e in p["history"]]
    drops = [e for e in history if e["action"] == "drop"]
    assert drops and all(e["comp_cost"] < e["disk_cost"] for e in drops)


@pytest.mark.timeout(1200)
def test_decisions_carry_the_executor_that_holds_the_block(run):
    squeezed = run["squeezed"]
    costly = squeezed["explain_costly"]["partitions"]
    spilled = {
        split: e["executor"]
        for split, p in costly.items()
        for e in p["history"]
        if e["action"] == "spill"
    }
    assert spilled
    where = squeezed["placement"][str(squeezed["costly_id"])]
    for split, executor in spilled.items():
        assert executor in {"0", "1"}
        holder, _memory, disk = where[str(split)]
        assert holder == executor and disk > 0  # on disk where the decision was taken
    for view in (squeezed["explain_costly"], squeezed["explain_cheap"]):
        for p in view["partitions"].values():
            assert all(e.get("executor") in {"0", "1"} for e in p["history"] if "victims" in e)


@pytest.mark.timeout(1200)
def test_an_executor_killed_mid_job_gives_the_plain_answer_and_the_manager_carries_on(run):
    costly, cheap = run["expected"]
    assert run["executors_seen"] == 2
    assert run["after_kill"] == [costly, costly, cheap]
    report = run["kill_report"]
    assert run["attached"] and report["errors"] == {}
    assert report["resync_corrections"] >= 1  # the dead executor's blocks left the ledger
    assert report["hits"] >= 1  # the surviving executor's blocks were still read


@pytest.mark.timeout(1200)
def test_both_executors_plugin_halves_register_through_spark_jars(run):
    assert run["registered"] == ["0", "1"]
    assert run["jars"].endswith("blaze-spark-jvm.jar")


@pytest.mark.timeout(1200)
def test_mem_disk_budget_per_executor_and_spills_read_back_from_their_executor(run):
    result = run["mem_disk"]
    assert result["first"] == result["second"] == result["expected"]
    report = result["report"]
    assert report["mode"] == "cluster"
    # blocks live on both executors, and each executor's cached memory is within its budget
    holders = {entry[0] for entries in result["placement"].values() for entry in entries}
    assert {"0", "1"} <= holders, result["placement"]
    assert all(m <= result["budget"] for m in result["memory_by_executor"].values()), (
        json.dumps({k: result[k] for k in ("budget", "memory_by_executor", "placement")})
        + json.dumps(report["decisions"])
        + json.dumps(report["order_outcomes"])
    )
    assert set(result["memory_by_executor"]) >= {"0", "1"}
    # partitions the manager spilled sit on their executor's disk only, and were read from
    # there: nothing was recomputed
    spilled = {
        int(s)
        for s, entries in result["placement"].items()
        if entries and all(mem == 0 and disk > 0 for _, mem, disk in entries)
    }
    assert spilled, result["placement"]
    assert report["decisions"]["spill_to_disk"] >= len(spilled)
    assert report["order_outcomes"].get("spill_spilled", 0) >= len(spilled)
    assert "spill_degraded_to_drop" not in report["decisions"]
    assert result["computed_once"] == [1] * 8
    assert result["computed_twice"] == [1] * 8, result
    assert report["disk_hits"] >= len(spilled)
    assert report["errors"] == {}
