"""The manager on a multi-executor Spark: ``local-cluster[2,1,1024]`` in a subprocess.

Shows a budget enforced per executor, and a spill carried out on the executor that holds the
block (the JVM plugin's executor half; a spill used to degrade to a drop on a cluster): the
spilled partitions stay on their executor's disk and are read from there, never recomputed.
"""

from __future__ import annotations

import json

import pytest
from conftest import run_result_script

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCRIPT = r"""
import json, sys, time
import blaze
from blaze._jvm import JvmBridge
from blaze.plugin import registered_executors

spark = blaze.session(
    {"spark.master": "local-cluster[2,1,1024]", "spark.executor.memory": "768m",
     "spark.sql.shuffle.partitions": "4", "spark.blaze.enabled": "false"},
    app_name="blaze-cluster-test",
)
sc = spark.sparkContext
deadline = time.time() + 120
while len(registered_executors(spark)) < 2:  # both executors' plugin halves are up
    if time.time() > deadline:
        sys.exit("executors did not register")
    time.sleep(0.2)
bridge = JvmBridge(sc)
PARTS = 8
counters = [sc.accumulator(0) for _ in range(PARTS)]

def dataset():
    def tag(split, rows):
        counters[split].add(1)
        return ((x, "v" * 20) for x in rows)
    return sc.parallelize(range(40000), PARTS).mapPartitionsWithIndex(tag)

# probe one block's size with an ample budget
manager = blaze.attach(spark, policy="mem_disk", disk_write_ms_per_mib=1, disk_read_ms_per_mib=1)
probe = dataset().persist(blaze.BLAZE)
probe.count()
manager.sync()
size = max(max(b.memory_size, b.disk_size) for s in bridge.storage_status() for b in s.blocks)
manager.detach()
probe.unpersist(blocking=True)
for c in counters:
    c.value = 0

budget = int(size * 2.5)  # two blocks per executor
manager = blaze.attach(spark, policy="mem_disk", memory_budget=budget,
                       disk_write_ms_per_mib=1, disk_read_ms_per_mib=1)
data = dataset().persist(blaze.BLAZE)
first = data.map(lambda kv: kv[0]).sum()
manager.sync()
placement = {}
for split in range(PARTS):
    placement[split] = [
        [s.executor_id, s.memory_size, s.disk_size] for s in bridge.block_status(data.id(), split)
    ]
memory_by_executor = {}
for status in bridge.storage_status():
    memory_by_executor[status.executor_id] = sum(
        b.memory_size for b in status.blocks if b.rdd_id == data.id())
computed_once = [c.value for c in counters]
second = data.map(lambda kv: kv[0]).sum()
manager.sync()
print("RESULT " + json.dumps({
    "first": first, "second": second, "expected": sum(range(40000)),
    "size": size, "budget": budget, "placement": placement,
    "memory_by_executor": memory_by_executor,
    "computed_once": computed_once, "computed_twice": [c.value for c in counters],
    "report": manager.report(),
}), flush=True)
spark.stop()
"""


def test_per_partition_removal_and_per_executor_budget_on_two_executors(tmp_path):
    result = run_result_script(tmp_path, "cluster_app.py", SCRIPT, timeout_s=420)

    assert result["first"] == result["second"] == result["expected"]
    report = result["report"]
    assert report["mode"] == "cluster"
    # blocks live on both executors, and each executor's cached memory is within its budget
    holders = {entry[0] for entries in result["placement"].values() for entry in entries}
    assert {"0", "1"} <= holders, result["placement"]
    assert all(m <= result["budget"] for m in result["memory_by_executor"].values()), (
        json.dumps({k: result[k] for k in ("budget", "memory_by_executor", "placement")})
        + json.dumps(result["report"]["decisions"])
        + json.dumps(result["report"]["order_outcomes"])
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
