"""Retirement of the finished lineage: a long program's books stay its live part, and no
remaining partition's cost changes because the finished part was forgotten."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from blaze.engine import Engine
from costmodel.disk import DiskCost
from lineage.dag import LineageDag
from lineage.events import BlockEvent, JobRun, RddNode, RddUnpersisted, StageRun, StorageLevelInfo

CACHED = StorageLevelInfo(use_disk=True, use_memory=True)
PLAIN = StorageLevelInfo()
NONE = StorageLevelInfo(use_disk=False, use_memory=False)
PARTS = 2


def _engine() -> Engine:
    return Engine(
        LineageDag(), DiskCost(1.0, 1.0), site_of=lambda rdd: None, later_reads=lambda r: 0.0
    )


class Program:
    """The same events fed to two engines; one retires the finished lineage at each job end."""

    def __init__(self) -> None:
        self.kept, self.retiring = _engine(), _engine()
        self.next_rdd, self.next_stage, self.next_job = 1, 0, 0
        self.held: set[int] = set()  # what the manager's registry and books would hold

    def feed(self, record) -> None:
        for eng in (self.kept, self.retiring):
            eng.dag.apply(record)
            if isinstance(record, StageRun):
                eng.on_stage(record)
            elif isinstance(record, JobRun):
                eng.on_job(record)
            elif isinstance(record, BlockEvent):
                eng.on_location(
                    (record.rdd_id, record.split_index), record.memory_size, record.disk_size
                )
        if isinstance(record, JobRun) and record.succeeded is not None:
            self.retiring.retire_finished(lambda rdd: rdd in self.held)

    def node(self, parents, cached=False) -> RddNode:
        rdd_id = self.next_rdd
        self.next_rdd += 1
        return RddNode(
            rdd_id,
            "PythonRDD",
            f"app.py:{rdd_id % 3}",
            tuple(parents),
            PARTS,
            CACHED if cached else PLAIN,
        )

    def job(self, nodes, *, store=(), finish=True) -> int:
        """One job of one stage listing ``nodes``; ``store`` of them get blocks."""
        stage = StageRun(self.next_stage, 0, "s", PARTS, tuple(nodes), ())
        job = JobRun(self.next_job, (stage.stage_id,), stages=(stage,))
        self.next_stage += 1
        self.next_job += 1
        self.feed(job)
        self.feed(stage)
        for rdd_id in store:
            for split in range(PARTS):
                self.feed(
                    BlockEvent(
                        f"rdd_{rdd_id}_{split}",
                        "driver",
                        CACHED,
                        100 + split,
                        0,
                        None,
                        rdd_id,
                        split,
                    )
                )
        if finish:
            self.feed(StageRun(stage.stage_id, 0, "s", PARTS, tuple(nodes), (), completed=True))
            self.feed(JobRun(job.job_id, job.stage_ids, succeeded=True))
        return job.job_id

    def unpersist(self, rdd_id: int) -> None:
        for split in range(PARTS):
            self.feed(
                BlockEvent(f"rdd_{rdd_id}_{split}", "driver", NONE, 0, 0, None, rdd_id, split)
            )
        self.feed(RddUnpersisted(rdd_id))
        self.held.discard(rdd_id)

    def assert_costs_agree(self) -> None:
        model, full = self.retiring.model, self.kept.model
        for rdd_id, spec in model.rdds.items():
            assert spec.job_id == full.rdds[rdd_id].job_id
            for split in range(PARTS):
                assert model.cost((rdd_id, split)) == full.cost((rdd_id, split)), (rdd_id, split)


BASE = RddNode(0, "ParallelCollectionRDD", "app.py:0", (), PARTS, PLAIN)


def _generations(program: Program, steps: list[str]) -> None:
    """``gen``: cache a new base.map generation, count it, unpersist the previous one;
    ``chain``: a cached child of the previous generation (kept, so its lineage stays);
    ``overlap``: a generation whose job ends only after the next job started (the listener
    feeds the lineage ahead of the manager): retirement then runs with a job still open."""
    previous = None
    for step in steps:
        parent = previous if (step == "chain" and previous is not None) else BASE
        gen = program.node([parent.rdd_id], cached=True)
        counted = program.node([gen.rdd_id])
        program.held.add(gen.rdd_id)
        lineage = [counted, gen, parent] + ([BASE] if parent is not BASE else [])
        program.job(lineage, store=[gen.rdd_id], finish=step != "overlap")
        if step == "overlap":
            first_stage, first_job = program.next_stage - 1, program.next_job - 1
            reader = program.node([gen.rdd_id])
            program.job([reader, gen, parent], finish=False)  # the next job, still open
            program.feed(StageRun(first_stage, 0, "s", PARTS, tuple(lineage), (), completed=True))
            program.feed(JobRun(first_job, (first_stage,), succeeded=True))  # retires
            program.assert_costs_agree()  # the open job's stages keep what they list
            program.feed(
                StageRun(
                    program.next_stage - 1, 0, "s", PARTS, (reader, gen, parent), (), completed=True
                )
            )
            program.feed(JobRun(program.next_job - 1, (program.next_stage - 1,), succeeded=True))
        if previous is not None and step != "chain":
            program.unpersist(previous.rdd_id)
        previous = gen
        program.assert_costs_agree()


def test_a_long_loop_keeps_the_books_of_its_live_generation_only():
    program = Program()
    _generations(program, ["gen"] * 200)
    dag, model = program.retiring.dag, program.retiring.model
    # the base, the live generation and the one unpersisted after the last job's end (it
    # goes at the next job's end); nothing of the 198 dead before them
    assert set(model.rdds) == {0, program.next_rdd - 4, program.next_rdd - 2}
    assert len(dag.rdds) <= 3 and len(dag.stage_ids()) <= 1 and len(dag.job_ids()) <= 1
    assert len(model.completed_stages) <= 1
    assert len(program.kept.model.rdds) == 401  # without retirement every generation stays


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["gen", "chain", "overlap"]), min_size=1, max_size=25))
def test_retiring_the_finished_lineage_changes_no_remaining_cost(steps):
    _generations(Program(), steps)
