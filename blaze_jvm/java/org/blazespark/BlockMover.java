package org.blazespark;

import org.apache.spark.SparkEnv;
import org.apache.spark.storage.BlockId;
import org.apache.spark.storage.BlockInfo;
import org.apache.spark.storage.BlockManager;
import org.apache.spark.storage.RDDBlockId;
import org.apache.spark.storage.StorageLevel;
import org.apache.spark.storage.memory.MemoryStore;
import scala.Option;
import scala.util.Either;
import scala.util.Left;
import scala.util.Right;

/** Carries out one order in this executor's BlockManager, as Spark's own eviction would. */
final class BlockMover {
  private BlockMover() {}

  // BlockInfo.level: a spill for good gives the block a level without memory, so Spark's
  // read path does not cache the disk copy in memory again (a refused promotion that
  // Spark would otherwise repeat, evicting by its own LRU, at every read)
  private static final java.lang.reflect.Field LEVEL = levelField();

  private static java.lang.reflect.Field levelField() {
    try {
      java.lang.reflect.Field field = BlockInfo.class.getDeclaredField("level");
      field.setAccessible(true);
      return field;
    } catch (ReflectiveOperationException | RuntimeException e) {
      return null; // another Spark: spills stay plain spills
    }
  }

  // the level each block spilled for good had, for the engine's order to allow it back
  private static final java.util.Map<BlockId, StorageLevel> HELD_ON_DISK =
      new java.util.concurrent.ConcurrentHashMap<>();

  /** The block keeps its disk copy and is read from disk from now on. */
  private static void keepOnDisk(BlockId id, BlockInfo info) {
    if (LEVEL == null || !info.level().useDisk() || !info.level().useMemory()) {
      return;
    }
    try {
      StorageLevel before = info.level();
      LEVEL.set(info, StorageLevel.DISK_ONLY());
      HELD_ON_DISK.put(id, before);
    } catch (IllegalAccessException e) {
      // left as it was: Spark may cache a later read in memory, and the engine decides again
    }
  }

  /** "allowed": the block spilled for good has its level back, so Spark's next read of it
   * caches it in memory (reported by {@link Promotions}); "not_held" when it was not held. */
  private static String allow(BlockManager bm, BlockId id) {
    StorageLevel before = HELD_ON_DISK.remove(id);
    if (before == null) {
      return "not_held";
    }
    Option<BlockInfo> locked = bm.blockInfoManager().lockForWriting(id, false);
    if (locked.isEmpty()) {
      HELD_ON_DISK.put(id, before);
      return bm.blockInfoManager().get(id).isEmpty() ? "not_held" : "locked";
    }
    try {
      LEVEL.set(locked.get(), before);
      return "allowed";
    } catch (IllegalAccessException e) {
      return "not_held";
    } finally {
      bm.blockInfoManager().unlock(id, Option.empty());
    }
  }

  /** Forget the held levels of blocks that no longer exist (unpersisted, dropped). */
  static void forgetGone(BlockManager bm) {
    HELD_ON_DISK.keySet().removeIf(id -> bm.blockInfoManager().get(id).isEmpty());
  }

  /** "spilled", "dropped", "locked" (a task holds it: retry), "not_in_memory", "gone";
   * for an allow order "allowed" or "not_held". */
  static String apply(Order order) {
    BlockManager bm = SparkEnv.get().blockManager();
    BlockId id = new RDDBlockId(order.rddId(), order.split());
    if (order.action() == Order.ALLOW) {
      return allow(bm, id);
    }
    if (!order.spill()) {
      // memory and disk copies go; Spark tells the master, whose update reaches the listener
      if (bm.blockInfoManager().get(id).isEmpty()) {
        return "gone";
      }
      HELD_ON_DISK.remove(id);
      bm.removeBlock(id, true);
      return "dropped";
    }
    MemoryStore store = bm.memoryStore();
    boolean inMemory = store.contains(id);
    if (!inMemory && order.action() != Order.TO_DISK) {
      return "not_in_memory";
    }
    Option<BlockInfo> locked = bm.blockInfoManager().lockForWriting(id, false);
    if (locked.isEmpty()) {
      return inMemory ? "locked" : "not_in_memory";
    }
    boolean released = false;
    try {
      BlockInfo info = locked.get();
      if (!store.contains(id)) { // Spark evicted it first: its disk copy stays on disk
        if (order.action() == Order.TO_DISK && bm.diskStore().contains(id)) {
          keepOnDisk(id, info);
        }
        return "not_in_memory";
      }
      Either<Object, org.apache.spark.util.io.ChunkedByteBuffer> data;
      if (info.level().deserialized()) {
        var values = store.getValues(id);
        if (values.isEmpty()) {
          return "not_in_memory";
        }
        data = new Left<>(values.get().toArray(info.classTag()));
      } else {
        var bytes = store.getBytes(id);
        if (bytes.isEmpty()) {
          return "not_in_memory";
        }
        data = new Right<>(bytes.get());
      }
      final Either<Object, org.apache.spark.util.io.ChunkedByteBuffer> thunk = data;
      @SuppressWarnings({"unchecked", "rawtypes"})
      StorageLevel left = bm.dropFromMemory(id, (scala.Function0) () -> thunk, info.classTag());
      if (!left.isValid()) { // a level without disk: dropFromMemory removed the block
        bm.blockInfoManager().removeBlock(id);
        released = true;
        return "dropped";
      }
      if (order.action() == Order.TO_DISK) {
        keepOnDisk(id, info);
      }
      return "spilled";
    } finally {
      if (!released) {
        bm.blockInfoManager().unlock(id, Option.empty());
      }
    }
  }
}
