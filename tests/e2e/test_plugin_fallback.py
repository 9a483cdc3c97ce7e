"""Without a working JVM plugin the manager says so in one line, falls back to Spark's own
caching (its decisions counted as not carried out) and the program's answers are unchanged.

Each case is its own driver process on ``local[1]`` (``spark.plugins`` is read once, when a
SparkContext starts): a session started without the plugin, and one whose plugin jar was
built for another Spark version.
"""

from __future__ import annotations

import pytest
from conftest import finish_script, printed_json, start_script

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCRIPT = r"""
import json, sys
from pyspark.sql import SparkSession
import blaze

conf = {"spark.master": "local[1]", "spark.ui.enabled": "false"}
if sys.argv[1] == "other-spark-jar":
    from pathlib import Path
    from blaze_jvm import with_plugin
    from blaze_jvm.build import SOURCE_ROOT, build_jar, spark_jars_dir
    jar = build_jar(SOURCE_ROOT, classpath_dir=spark_jars_dir(), spark_version="3.5.0",
                    cache_dir=Path(sys.argv[2]))
    conf = with_plugin(conf, jar)
builder = SparkSession.builder.appName("blaze-plugin-fallback")
for key, value in conf.items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
sc = spark.sparkContext
manager = blaze.attach(spark, policy="blaze", memory_budget="300k",
                       disk_write_ms_per_mib=1, disk_read_ms_per_mib=1)
data = sc.parallelize(range(40000), 4).map(lambda x: (x, str(x) * 10)).persist(blaze.BLAZE)
answers = [data.map(lambda kv: kv[0]).sum() for _ in range(2)]
report = manager.report()
print("RESULT " + json.dumps({"answers": answers, "report": report}), flush=True)
spark.stop()
"""


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("case", "line"),
    [
        ("no-plugin", "started without blaze-spark's JVM plugin"),
        ("other-spark-jar", "was built for Spark 3.5.0, this is Spark"),
    ],
)
def test_without_a_working_plugin_one_line_and_sparks_own_caching(tmp_path, case, line):
    finished = finish_script(
        start_script(tmp_path, "fallback_app.py", SCRIPT, case, tmp_path / "jvm-cache"), 280
    )
    result, stderr = printed_json(finished), finished[2]
    assert result["answers"] == [sum(range(40000))] * 2
    report = result["report"]
    assert report["decisions"].get("not_carried_out", 0) >= 1, report["decisions"]
    assert report["order_outcomes"] == {}
    assert report["errors"] == {}
    assert sum(line in x for x in stderr.splitlines()) >= 1, stderr[-3000:]
    assert "Traceback" not in stderr
