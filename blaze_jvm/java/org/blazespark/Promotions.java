package org.blazespark;

import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import org.apache.spark.storage.BlockId;
import org.apache.spark.storage.BlockInfo;
import org.apache.spark.storage.BlockManager;
import org.apache.spark.storage.BlockStatus;
import scala.Option;
import scala.Tuple2;

/** Tells Spark's master about the RDD blocks Spark's read path cached back in memory.
 *
 * <p>Why: a read of a block's disk copy caches it in memory when its level allows
 * ({@code BlockManager.maybeCacheDiskBytesInMemory}), and Spark reports that to nobody, so
 * the driver's listener — the engine's only view — takes those blocks for disk-only: it
 * counts their memory hits as disk hits and leaves their memory out of the budget. Each
 * such block (memory and disk copies both held, not yet reported) is reported once with
 * its current status, as Spark reports any other change; the listener's event carries both
 * sizes and the engine judges the promotion like any other block entering memory. */
final class Promotions {
  // block -> the memory copy reported (its bytes object): a block dropped and cached back
  // between two scans holds a new copy, and is reported again
  private final Map<BlockId, Object> reported = new HashMap<>();

  /** The memory copy's identity: a serialized block's bytes (PySpark's are all serialized);
   * a deserialized block has none to compare, and is reported once. */
  private static Object memoryCopy(BlockManager bm, BlockId id) {
    try {
      Option<?> bytes = bm.memoryStore().getBytes(id);
      return bytes.isDefined() ? bytes.get() : null;
    } catch (IllegalArgumentException deserialized) {
      return id;
    }
  }

  /** Report the blocks promoted since the last call; returns how many. Called as each task
   * ends (two task threads may end at once). */
  synchronized int report(BlockManager bm) {
    Set<BlockId> both = new HashSet<>();
    var entries = bm.blockInfoManager().entries();
    while (entries.hasNext()) {
      Tuple2<BlockId, BlockInfo> entry = entries.next();
      BlockId id = entry._1();
      // the memory store's lookup first: few blocks are in memory, the disk's is a file stat
      if (id.isRDD() && bm.memoryStore().contains(id) && bm.diskStore().contains(id)) {
        both.add(id);
      }
    }
    int count = 0;
    for (BlockId id : both) {
      Object copy = memoryCopy(bm, id);
      if (copy == null || reported.get(id) == copy) {
        continue;
      }
      // a read lock keeps Spark from dropping the memory copy between this status and its
      // report (its drop's own report would otherwise arrive first and this stale one last);
      // a block being written or dropped now is looked at again by the next scan
      if (bm.blockInfoManager().lockForReading(id, false).isEmpty()) {
        continue;
      }
      try {
        Option<BlockStatus> status = bm.getStatus(id);
        if (status.isDefined() && status.get().memSize() > 0 && status.get().diskSize() > 0) {
          bm.reportBlockStatus(id, status.get(), 0L, Option.empty());
          reported.put(id, copy);
          count++;
        }
      } finally {
        bm.blockInfoManager().unlock(id, Option.empty());
      }
    }
    reported.keySet().retainAll(both);
    return count;
  }
}
