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

  /** "spilled", "dropped", "locked" (a task holds it: retry), "not_in_memory", "gone". */
  static String apply(Order order) {
    BlockManager bm = SparkEnv.get().blockManager();
    BlockId id = new RDDBlockId(order.rddId(), order.split());
    if (!order.spill()) {
      // memory and disk copies go; Spark tells the master, whose update reaches the listener
      if (bm.blockInfoManager().get(id).isEmpty()) {
        return "gone";
      }
      bm.removeBlock(id, true);
      return "dropped";
    }
    MemoryStore store = bm.memoryStore();
    if (!store.contains(id)) {
      return "not_in_memory";
    }
    Option<BlockInfo> locked = bm.blockInfoManager().lockForWriting(id, false);
    if (locked.isEmpty()) {
      return "locked";
    }
    boolean released = false;
    try {
      BlockInfo info = locked.get();
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
      return "spilled";
    } finally {
      if (!released) {
        bm.blockInfoManager().unlock(id, Option.empty());
      }
    }
  }
}
