"""lineage.parse: Spark event-log JSON -> records, without a JVM."""

from __future__ import annotations

import copy
import json

import pytest

from blaze_errors import InputError
from lineage import synthetic
from lineage.events import (
    ApplicationEnd,
    BlockEvent,
    JobRun,
    RddUnpersisted,
    StageRun,
    TaskRun,
)
from lineage.parse import HANDLED_EVENTS, parse_block_id, parse_event, parse_json_line


def _stage_event() -> dict:
    rdds = [
        synthetic.rdd_info(7, [6], name="ranks", cached=True),
        synthetic.rdd_info(6, [5], name="ShuffledRDD", call_site="reduceByKey at app.py:9"),
    ]
    return synthetic.stage_submitted(synthetic.stage_info(3, rdds, [1, 2], submitted=1234))


def test_stage_submitted_gives_a_stage_run_with_its_rdds():
    [stage] = parse_event(_stage_event())
    assert isinstance(stage, StageRun)
    assert (stage.stage_id, stage.attempt, stage.parent_stage_ids) == (3, 0, (1, 2))
    assert stage.submission_time == 1234 and stage.completion_time is None
    assert [r.rdd_id for r in stage.rdds] == [7, 6]
    assert stage.final_rdd_id == 7  # Spark lists the stage's own RDD first
    ranks = stage.rdds[0]
    assert ranks.parent_ids == (6,) and ranks.name == "ranks"
    assert ranks.storage_level.name == "MEMORY_ONLY"
    assert stage.rdds[1].call_site == "reduceByKey at app.py:9"


def test_job_start_carries_its_planned_stages_and_call_site():
    info = synthetic.stage_info(0, [synthetic.rdd_info(0, [])])
    [job] = parse_event(synthetic.job_start(5, [info], 99, "count at app.py:5"))
    assert isinstance(job, JobRun)
    assert job.stage_ids == (0,) and job.stages[0].stage_id == 0
    assert job.call_site == "count at app.py:5" and job.succeeded is None


@pytest.mark.parametrize("succeeded", [True, False])
def test_job_end(succeeded):
    [job] = parse_event(synthetic.job_end(5, 120, succeeded))
    assert (job.job_id, job.completion_time, job.succeeded) == (5, 120, succeeded)


def test_task_end_reads_partition_executor_times_and_bytes():
    [task] = parse_event(synthetic.task_end(4, 17, 2, run_ms=35, finish=500, executor="3"))
    assert isinstance(task, TaskRun)
    assert (task.stage_id, task.task_id, task.partition_index, task.executor_id) == (4, 17, 2, "3")
    assert (task.run_time_ms, task.finish_time, task.launch_time) == (35, 500, 465)
    assert (task.shuffle_read_bytes, task.shuffle_write_bytes, task.gc_time_ms) == (100, 50, 1)
    assert task.successful


def test_failed_task_without_metrics_parses_with_zeros():
    event = synthetic.task_end(4, 17, 2, run_ms=35, finish=500)
    del event["Task Metrics"]
    event["Task End Reason"] = {"Reason": "ExceptionFailure"}
    [task] = parse_event(event)
    assert not task.successful and task.run_time_ms == 0


def test_task_end_without_partition_id_uses_the_index():
    event = synthetic.task_end(4, 17, 2, run_ms=35, finish=500)
    del event["Task Info"]["Partition ID"]
    assert parse_event(event)[0].partition_index == 2


def test_updated_blocks_inside_task_metrics_become_block_events():
    event = synthetic.task_end(4, 17, 2, run_ms=35, finish=500)
    block = synthetic.block_updated(9, 2, 800)["Block Updated Info"]
    event["Task Metrics"]["Updated Blocks"] = [
        {"Block ID": block["Block ID"], "Status": {k: block[k] for k in block if k != "Block ID"}}
    ]
    [task] = parse_event(event)
    assert [(b.rdd_id, b.split_index, b.memory_size) for b in task.updated_blocks] == [(9, 2, 800)]


@pytest.mark.parametrize(
    ("memory", "disk", "level"),
    [(500, 0, "MEMORY_ONLY"), (0, 700, "DISK_ONLY"), (0, 0, "NONE")],
)
def test_block_updated(memory, disk, level):
    [block] = parse_event(synthetic.block_updated(3, 1, memory, disk, executor="2"))
    assert isinstance(block, BlockEvent)
    assert (block.rdd_id, block.split_index, block.executor_id) == (3, 1, "2")
    assert (block.memory_size, block.disk_size, block.storage_level.name) == (memory, disk, level)


def test_non_rdd_blocks_have_no_rdd_id():
    event = synthetic.block_updated(3, 1, 10)
    event["Block Updated Info"]["Block ID"] = "broadcast_0_piece0"
    [block] = parse_event(event)
    assert block.rdd_id is None and block.split_index is None


@pytest.mark.parametrize(
    ("block_id", "expected"),
    [("rdd_12_3", (12, 3)), ("broadcast_1", None), ("shuffle_0_1_2", None), ("rdd_1", None)],
)
def test_parse_block_id(block_id, expected):
    assert parse_block_id(block_id) == expected


def test_unpersist_and_application_end():
    assert parse_event(synthetic.unpersist(4)) == [RddUnpersisted(4)]
    assert parse_event({"Event": "SparkListenerApplicationEnd", "Timestamp": 9}) == [
        ApplicationEnd(9)
    ]


@pytest.mark.parametrize(
    "name",
    ["SparkListenerTaskGettingResult", "SparkListenerEnvironmentUpdate", "com.example.Custom"],
)
def test_events_the_lineage_does_not_need_give_nothing(name):
    assert name not in HANDLED_EVENTS
    assert parse_event({"Event": name, "anything": 1}) == []


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e["Stage Info"].pop("Stage ID"), "'Stage ID' is missing"),
        (lambda e: e["Stage Info"].__setitem__("Stage ID", "three"), "'Stage ID' is not an int"),
        (
            lambda e: e["Stage Info"]["RDD Info"][0].pop("RDD ID"),
            r"RDD Info\[0\]: field .RDD ID. is missing",
        ),
        (lambda e: e.pop("Stage Info"), "'Stage Info' is missing"),
        (lambda e: e["Stage Info"].__setitem__("RDD Info", {}), "'RDD Info' is not a list"),
    ],
)
def test_malformed_known_events_name_the_field(mutate, message):
    event = copy.deepcopy(_stage_event())
    mutate(event)
    with pytest.raises(InputError, match=message):
        parse_event(event)


@pytest.mark.parametrize("event", [[1, 2], "text", {"no": "event"}, {"Event": 3}])
def test_non_events_are_rejected(event):
    with pytest.raises(InputError):
        parse_event(event)


def test_parse_json_line():
    assert parse_json_line(json.dumps(synthetic.unpersist(2))) == [RddUnpersisted(2)]
    with pytest.raises(InputError, match="not a JSON event line"):
        parse_json_line('{"Event": "SparkListenerUnpersistRDD", "RDD')
