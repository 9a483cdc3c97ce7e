"""Every py4j call the cache manager makes into Spark's internals, behind typed helpers.

Why one module: Spark's block-manager API is private and shifts between releases; keeping each
``_jvm``/``_jsc`` chain here means a Spark upgrade touches one file, and the rest of ``blaze``
deals only in plain Python values (ints, strings, :class:`BlockStatus`).

Facts this module relies on (verified on PySpark 4.3.0):

- ``SparkEnv`` methods cannot be called through py4j, so the driver's ``BlockManager`` is read
  from its private field by Java reflection.
- Works everywhere (driver master state or master→executor messages): block status,
  storage status, ``removeBlock`` (asynchronous), ``removeRdd``/``unpersistRDD``.
- Moving a block from memory to disk has no remote command: the JVM plugin's executor
  halves do it (``org.blazespark.BlockMover``), on orders queued in its driver half
  (:class:`blaze._plugin_jvm.PluginMailbox`), in local mode and on a cluster alike.
- Scala collections are read through one ``toString()`` call and parsed here: one py4j round
  trip instead of one per element (a py4j call costs ~0.2 ms).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from blaze._plugin_jvm import plugin_class
from blaze.sparklog import JvmLog
from lineage.events import StorageLevelInfo
from lineage.walk import walk

__all__ = [
    "BlockStatus",
    "ExecutorStorage",
    "JvmBridge",
    "parse_block_statuses",
    "parse_storage_level",
    "set_call_site",
]

_LEVEL = re.compile(r"StorageLevel\(([^)]*)\)")
_BLOCK_BY_EXECUTOR = re.compile(
    r"BlockManagerId\(([^,\s]+),[^)]*\)\s*->\s*BlockStatus\(StorageLevel\(([^)]*)\),(\d+),(\d+)\)"
)
_RDD_BLOCK = re.compile(
    r"rdd_(\d+)_(\d+)\s*->\s*BlockStatus\(StorageLevel\(([^)]*)\),(\d+),(\d+)\)"
)


def parse_storage_level(text: str) -> StorageLevelInfo:
    """``"disk, memory, deserialized, 1 replicas"`` (StorageLevel.toString's inside) → flags."""
    match = _LEVEL.search(text)
    inner = match.group(1) if match else text
    tokens = [t.strip() for t in inner.split(",")]
    replication = 1
    for token in tokens:
        if token.endswith("replicas"):
            replication = int(token.split()[0])
    return StorageLevelInfo(
        use_disk="disk" in tokens,
        use_memory="memory" in tokens,
        use_off_heap="offheap" in tokens,
        deserialized="deserialized" in tokens,
        replication=replication,
    )


@dataclass(frozen=True)
class BlockStatus:
    """Where one RDD block lives on one executor, as the driver's BlockManagerMaster knows it."""

    rdd_id: int
    split_index: int
    executor_id: str
    level: StorageLevelInfo
    memory_size: int
    disk_size: int


@dataclass(frozen=True)
class ExecutorStorage:
    """One block manager's storage memory and its RDD blocks (driver included in local mode)."""

    executor_id: str
    max_memory: int
    memory_used: int
    disk_used: int
    blocks: tuple[BlockStatus, ...]


def parse_block_statuses(text: str, rdd_id: int, split_index: int) -> list[BlockStatus]:
    """Parse ``Map(BlockManagerId(exec, host, port, None) -> BlockStatus(...), ...)``."""
    return [
        BlockStatus(
            rdd_id,
            split_index,
            executor,
            parse_storage_level(level),
            int(mem),
            int(disk),
        )
        for executor, level, mem, disk in _BLOCK_BY_EXECUTOR.findall(text)
    ]


def parse_rdd_blocks(text: str, executor_id: str) -> list[BlockStatus]:
    """Parse ``StorageStatus.rddBlocks().toString()`` (``Map(rdd_3_1 -> BlockStatus(...))``)."""
    return [
        BlockStatus(int(rdd), int(split), executor_id, parse_storage_level(lvl), int(m), int(d))
        for rdd, split, lvl, m, d in _RDD_BLOCK.findall(text)
    ]


def launch_conf(context_class):
    """The JVM SparkConf a context would start from (system properties: ``spark-submit
    --conf`` and spark-defaults), read before the context exists."""
    return context_class._jvm.SparkConf(True)


def print_to_jvm_stderr(line: str) -> bool:
    """Print ``line`` on the JVM's stderr (spark-submit forwards the Python driver's stderr
    into the program's stdout; the JVM's stays stderr). False when no JVM is running."""
    from pyspark.core.context import SparkContext

    jvm = SparkContext._jvm
    if jvm is None:
        return False
    jvm.java.lang.System.err.println(line)
    jvm.java.lang.System.err.flush()
    return True


def jvm_rdd_class(rdd) -> str | None:
    """The simple class name of a PySpark RDD's JVM RDD (``ParallelCollectionRDD``, ...);
    None for an object without one or a stopped context."""
    from py4j.protocol import Py4JError

    try:
        return str(rdd._jrdd.rdd().getClass().getSimpleName())
    except (AttributeError, Py4JError):
        return None


def set_call_site(sc, site: str | None) -> None:
    """Name the jobs ``sc`` submits next after ``site``; None lets Spark name them again.

    PySpark has no ``setCallSite`` of its own, only the JVM ``SparkContext``'s.
    """
    sc._jsc.setCallSite(site)


class JvmBridge:
    """Typed access to one SparkContext's block management (thread-safe, caches class refs)."""

    def __init__(self, sc) -> None:
        self._sc = sc
        self._jvm = sc._jvm
        self._jsc = sc._jsc.sc()
        env_class = self._jvm.java.lang.Class.forName("org.apache.spark.SparkEnv")
        field = env_class.getDeclaredField("blockManager")
        field.setAccessible(True)
        self._block_manager = field.get(self._jsc.env())
        self._master = self._block_manager.master()
        self._rdd_block_id = self._jvm.org.apache.spark.storage.RDDBlockId
        lineage_class = plugin_class(self._jvm, "org.blazespark.Lineage")
        # the method looked up once: py4j asks the JVM to resolve a static member per access
        self._lineage_walk = None if lineage_class is None else lineage_class.walk
        self._cached_rdd_id = None if lineage_class is None else lineage_class.cachedRddId
        self._dropped_counters: dict[str, Any] = {}  # listener queue -> its JVM counter
        self._dag_scheduler = None  # looked up at the first last_job_id
        # RDD.storageLevel and the level it is set to, looked up at the first use (py4j
        # resolves a dotted JVM name one round trip per part, every time it is written out)
        self._rdd_level_field = None
        self._memory_only_ser = None
        master_url = sc.master or ""
        self.is_local = master_url.startswith("local") and not master_url.startswith(
            "local-cluster"
        )

    @staticmethod
    def is_running(sc) -> bool:
        """Whether ``sc`` is a SparkContext whose JVM side is up (not stopped)."""
        return getattr(sc, "_jsc", None) is not None

    # ---- identity ------------------------------------------------------------------------
    @property
    def app_name(self) -> str:
        return str(self._jsc.appName())

    @property
    def app_id(self) -> str:
        return str(self._jsc.applicationId())

    def log4j(self, name: str) -> JvmLog:
        """The driver JVM's log4j logger ``name`` (Spark's own logging)."""
        return JvmLog(self._jvm.org.apache.logging.log4j.LogManager.getLogger(name))

    def conf(self) -> dict[str, str]:
        """The SparkContext's conf as a dict (one call; the JVM SparkConf is authoritative)."""
        return {str(k): str(v) for k, v in self._sc.getConf().getAll()}

    def is_stopped(self) -> bool:
        try:
            return bool(self._jsc.isStopped())
        except Exception:  # the gateway itself is gone
            return True

    # ---- reading block state (works on a cluster) ---------------------------------------
    def block_status(self, rdd_id: int, split_index: int) -> list[BlockStatus]:
        """The block's status on every executor that holds it (empty if nowhere)."""
        statuses = self._master.getBlockStatus(self._rdd_block_id(rdd_id, split_index), True)
        return parse_block_statuses(statuses.toString(), rdd_id, split_index)

    def storage_status(self) -> list[ExecutorStorage]:
        """Per block manager: max storage memory, memory/disk used, and every RDD block."""
        result = []
        for status in self._master.getStorageStatus():
            executor = str(status.blockManagerId().executorId())
            result.append(
                ExecutorStorage(
                    executor_id=executor,
                    max_memory=int(status.maxMem()),
                    memory_used=int(status.memUsed()),
                    disk_used=int(status.diskUsed()),
                    blocks=tuple(parse_rdd_blocks(status.rddBlocks().toString(), executor)),
                )
            )
        return result

    def persistent_rdd_ids(self) -> set[int]:
        """Ids of the RDDs the SparkContext holds as persisted."""
        text = self._jsc.getPersistentRDDs().keySet().toString()
        return {int(x) for x in re.findall(r"\d+", text)}

    def event_log_file(self) -> str | None:
        """This application's event log (a rolling ``eventlog_v2_*`` directory or a file)
        when Spark writes one to a local directory; None otherwise."""
        conf = self.conf()
        if conf.get("spark.eventLog.enabled", "false").lower() != "true":
            return None
        base = conf.get("spark.eventLog.dir", "/tmp/spark-events")
        if base.startswith("file:"):
            base = base[len("file:") :]
        if "://" in base:  # hdfs:// and the like: not next to it
            return None
        name = self.app_id
        if conf.get("spark.eventLog.rolling.enabled", "true").lower() == "true":
            name = f"eventlog_v2_{name}"
        elif conf.get("spark.eventLog.compress", "true").lower() == "true":
            name += "." + conf.get("spark.eventLog.compression.codec", "zstd")
        return f"{base.rstrip('/')}/{name}"

    def dropped_listener_events(self, queue: str = "blaze") -> int | None:
        """Events Spark's listener bus dropped on ``queue`` because it was full (Spark's own
        ``queue.<name>.numDroppedEvents`` counter); None if the queue does not exist."""
        counter = self._dropped_counters.get(queue)
        if counter is None:  # found once, then one py4j call per read
            counters = self._jsc.listenerBus().metrics().metricRegistry().getCounters()
            counter = counters.get(f"queue.{queue}.numDroppedEvents")
            if counter is None:
                return None
            self._dropped_counters[queue] = counter
        return int(counter.getCount())

    def last_job_id(self) -> int | None:
        """The id of the last job Spark has numbered (-1 before any; None if unreadable).

        The DAGScheduler numbers jobs from 0 as they are submitted, before their start event
        is posted; its counter (``nextJobId``, private to Spark) is one py4j call away.
        """
        try:
            if self._dag_scheduler is None:
                self._dag_scheduler = self._jsc.dagScheduler()
            counter = self._dag_scheduler.nextJobId()
            return int(counter if isinstance(counter, int) else counter.get()) - 1
        except Exception:  # another Spark build: the caller waits for every event instead
            return None

    def dataframe_rdd_id(self, df, *, build: bool = True) -> int | None:
        """The id of the RDD holding a cached DataFrame's columnar batches (None if not
        cached; with ``build`` False, also None while Spark has not made that RDD yet —
        building it costs milliseconds the DataFrame's first action would not save).

        One py4j call through the plugin's :java:`org.blazespark.Lineage`; a session without
        the plugin's jar follows the chain from the cache manager here (about ten round trips)
        and builds the RDD whatever ``build`` says.
        """
        jdf = df._jdf
        if self._cached_rdd_id is not None:
            rdd_id = int(self._cached_rdd_id(jdf, build))
            return None if rdd_id < 0 else rdd_id
        spark = df.sparkSession
        cached = spark._jsparkSession.sharedState().cacheManager().lookupCachedData(jdf)
        if not cached.isDefined():
            return None
        return int(cached.get().cachedRepresentation().cacheBuilder().cachedColumnBuffers().id())

    # ---- commands that work on a cluster ------------------------------------------------
    def remove_block(self, rdd_id: int, split_index: int) -> None:
        """Ask every executor holding the block to drop it (asynchronous; ~10-35 ms)."""
        self._master.removeBlock(self._rdd_block_id(rdd_id, split_index))

    def unpersist_rdd(self, rdd_id: int, blocking: bool = False) -> None:
        """Unpersist a whole RDD by id: its level is reset and every block removed."""
        rdd = self._jsc.getPersistentRDDs().get(rdd_id)
        if rdd.isDefined():
            rdd.get().unpersist(blocking)
        else:
            self._jsc.unpersistRDD(rdd_id, blocking)

    def keep_in_memory_only(self, rdd_id: int, rdd=None) -> bool:
        """Give a persisted RDD the level MEMORY_ONLY (False: it is not persisted).

        For an RDD with no block yet: the tasks of the next job carry the level, so its
        partitions are put in memory only and Spark's own eviction drops them. Spark refuses
        a second ``persist`` with another level and its ``persist(level, allowOverride)`` is
        private, so the private field is set, as that method would. ``rdd``: the PySpark
        RDD of that id, when the caller holds it — its JVM RDD is one call away, not four
        (this runs before every job of a loop that persists a generation per job)."""
        if rdd is not None and rdd.is_cached:
            target = rdd._jrdd.rdd()
        else:
            held = self._jsc.getPersistentRDDs().get(rdd_id)
            if not held.isDefined():
                return False
            target = held.get()
        if self._rdd_level_field is None:
            rdd_class = self._jvm.java.lang.Class.forName("org.apache.spark.rdd.RDD")
            field = rdd_class.getDeclaredField("storageLevel")
            field.setAccessible(True)
            self._rdd_level_field = field
            # serialized, as PySpark's MEMORY_ONLY and every level the manager persists at
            self._memory_only_ser = (
                self._jvm.org.apache.spark.storage.StorageLevel.MEMORY_ONLY_SER()
            )
        self._rdd_level_field.set(target, self._memory_only_ser)
        return True

    def lineage(
        self,
        rdd,
        cached_counts: Mapping[int, int],
        limit: int = 400,
    ) -> dict[int, tuple[int, ...]]:
        """``{rdd id: parent ids}`` of ``rdd`` (a PySpark RDD, or a JVM RDD) and its
        ancestors.

        Descent stops at a persisted RDD whose partitions are all cached
        (``cached_counts[rdd id] >= its partitions``: the job will not read its ancestors),
        and after ``limit`` RDDs (long uncached lineages are cut; the caller only loses
        precision). One py4j call through the plugin's :java:`org.blazespark.Lineage`; a
        session without the plugin's jar walks the JVM graph from here (about seven round
        trips per RDD, paid before every job).
        """
        jrdd = getattr(rdd, "_jrdd", rdd)
        if self._lineage_walk is not None:  # takes the JavaRDD itself
            counts = ",".join(f"{rdd_id}:{n}" for rdd_id, n in cached_counts.items())
            lines = str(self._lineage_walk(jrdd, counts, limit)).splitlines()
            return {
                int(ids[0]): tuple(int(p) for p in ids[1:])
                for ids in (line.split() for line in lines)
            }
        root = jrdd.rdd() if hasattr(jrdd, "rdd") else jrdd
        graph: dict[int, tuple[int, ...]] = {}

        def parents_of(item: tuple[int, Any]) -> list[tuple[int, Any]]:
            rdd_id, rdd = item
            if rdd.getStorageLevel().isValid() and cached_counts.get(rdd_id, 0) >= int(
                rdd.getNumPartitions()
            ):
                graph[rdd_id] = ()
                return []
            deps = rdd.dependencies()
            parents = [deps.apply(i).rdd() for i in range(int(deps.size()))]
            items = [(int(p.id()), p) for p in parents]
            graph[rdd_id] = tuple(i for i, _ in items)
            return items

        for _ in walk([(int(root.id()), root)], parents_of, key=lambda item: item[0], limit=limit):
            pass
        return graph

    # ---- local mode only ----------------------------------------------------------------
    def block_file(self, rdd_id: int, split_index: int) -> str:
        """Path of the file the driver's DiskBlockManager keeps (or would keep) a block in
        (local mode: the driver's block manager is the executor's)."""
        block_id = self._rdd_block_id(rdd_id, split_index)
        return str(self._block_manager.diskBlockManager().getFile(block_id).getPath())

    def in_memory_store(self, rdd_id: int, split_index: int) -> bool:
        """Whether the driver's memory store holds the block (local mode), whatever the master
        was told: Spark caches a disk read in memory without reporting it."""
        return bool(
            self._block_manager.memoryStore().contains(self._rdd_block_id(rdd_id, split_index))
        )

    def prefetch_from_disk(self, rdd_id: int, split_index: int) -> int:
        """Move a spilled block back into memory (local mode); returns the bytes read from
        disk, 0 if nothing was read (already in memory, not on disk, no room in Spark's
        memory store, or a task holds the block).

        Spark's own read of a disk block caches its bytes in memory when the level allows,
        but its master keeps showing the block on disk (a status with both flags records the
        disk copy only). So the block manager's read is used, then the disk copy is removed
        and a memory-only status reported: the listener and the storage status see the
        block in memory, and evicting it again really writes it again (MRD's prefetch).
        """
        if not self.is_local:
            return 0
        block_id = self._rdd_block_id(rdd_id, split_index)
        bm = self._block_manager
        memory, disk = bm.memoryStore(), bm.diskStore()
        if memory.contains(block_id) or not disk.contains(block_id):
            return 0
        empty = self._jvm.scala.Option.empty()
        data = bm.getLocalBytes(block_id)  # read-locks the block; caches it if there is room
        if not data.isDefined():
            return 0
        try:
            read = int(data.get().size())
        finally:
            bm.releaseLockAndDispose(block_id, data.get(), empty)
        if not memory.contains(block_id):
            return 0
        infos = bm.blockInfoManager()
        locked = infos.lockForWriting(block_id, False)
        if not locked.isDefined():
            return read  # in memory and on disk; the master still shows the disk copy
        try:
            disk.remove(block_id)
            storage = self._jvm.org.apache.spark.storage
            level = storage.StorageLevel.apply(
                False, True, False, locked.get().level().deserialized(), 1
            )
            status = storage.BlockStatus(level, memory.getSize(block_id), 0)
            bm.reportBlockStatus(block_id, status, 0, empty)
        finally:
            infos.unlock(block_id, empty)
        return read
