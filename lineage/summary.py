"""What a person wants to know about a run's lineage, as plain rows (rendered by the CLI).

Kept apart from the rendering so tests check numbers, not table layout.
"""

from __future__ import annotations

from dataclasses import dataclass

from lineage.dag import LineageDag

__all__ = ["CallSiteRow", "DagSummary", "RddRow", "summarize"]


@dataclass(frozen=True)
class RddRow:
    rdd_id: int
    name: str
    call_site: str  # effective call site (see LineageDag.call_site)
    parent_ids: tuple[int, ...]
    num_partitions: int
    storage_level: str
    stages: int  # submitted stages that used it
    jobs: int
    reuse_count: int
    cached_partitions: int  # partitions whose block is stored now
    memory_bytes: int
    disk_bytes: int
    compute_ms: int  # summed run time of the tasks that produced its blocks


@dataclass(frozen=True)
class CallSiteRow:
    call_site: str
    rdd_ids: tuple[int, ...]
    cached_rdds: int
    max_reuse: int
    memory_bytes: int
    disk_bytes: int


@dataclass(frozen=True)
class DagSummary:
    jobs: int
    stages_run: int
    stages_skipped: int
    tasks: int
    rdds: int
    rdd_rows: tuple[RddRow, ...]  # every RDD: most reused first, then cached first
    call_sites: tuple[CallSiteRow, ...]  # most RDDs first


def _rdd_row(dag: LineageDag, rdd_id: int) -> RddRow:
    node = dag.rdds[rdd_id]
    parts = dag.partitions(rdd_id).values()
    stored = [p for p in parts if p.is_stored]
    return RddRow(
        rdd_id=rdd_id,
        name=node.name,
        call_site=dag.call_site(rdd_id),
        parent_ids=node.parent_ids,
        num_partitions=node.num_partitions,
        storage_level=node.storage_level.name,
        stages=len(dag.executed_stages_of(rdd_id)),
        jobs=len(dag.jobs_of(rdd_id)),
        reuse_count=dag.reuse_count(rdd_id),
        cached_partitions=len(stored),
        memory_bytes=sum(p.memory_size for p in stored),
        disk_bytes=sum(p.disk_size for p in stored),
        compute_ms=sum(p.compute_time_ms or 0 for p in parts),
    )


def summarize(dag: LineageDag) -> DagSummary:
    """Counts, one row per RDD and one per call site."""
    rows = [_rdd_row(dag, rdd_id) for rdd_id in sorted(dag.rdds)]
    by_site: dict[str, list[RddRow]] = {}
    for row in rows:
        by_site.setdefault(row.call_site, []).append(row)
    sites = [
        CallSiteRow(
            call_site=site,
            rdd_ids=tuple(r.rdd_id for r in site_rows),
            cached_rdds=sum(1 for r in site_rows if r.storage_level != "NONE"),
            max_reuse=max(r.reuse_count for r in site_rows),
            memory_bytes=sum(r.memory_bytes for r in site_rows),
            disk_bytes=sum(r.disk_bytes for r in site_rows),
        )
        for site, site_rows in by_site.items()
    ]
    return DagSummary(
        jobs=len(dag.job_ids()),
        stages_run=len(dag.submitted_stage_ids()),
        stages_skipped=len(dag.skipped_stage_ids()),
        tasks=sum(len(dag.tasks(s)) for s in dag.submitted_stage_ids()),
        rdds=len(rows),
        rdd_rows=tuple(
            sorted(
                rows,
                key=lambda r: (
                    -r.reuse_count,
                    r.storage_level == "NONE",
                    -r.memory_bytes,
                    r.rdd_id,
                ),
            )
        ),
        call_sites=tuple(sorted(sites, key=lambda s: (-len(s.rdd_ids), s.call_site))),
    )
