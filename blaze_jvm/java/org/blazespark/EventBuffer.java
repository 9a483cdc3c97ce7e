package org.blazespark;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.spark.SparkConf;
import org.apache.spark.Success$;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerApplicationEnd;
import org.apache.spark.scheduler.SparkListenerBlockUpdated;
import org.apache.spark.scheduler.SparkListenerEvent;
import org.apache.spark.scheduler.SparkListenerJobEnd;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.scheduler.SparkListenerStageCompleted;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.SparkListenerTaskStart;
import org.apache.spark.scheduler.SparkListenerUnpersistRDD;
import org.apache.spark.scheduler.StageInfo;
import org.apache.spark.storage.RDDInfo;
import org.apache.spark.util.JsonProtocol;
import org.apache.spark.util.JsonProtocolOptions;

/**
 * Turns the listener-bus events blaze's lineage reads into event-log JSON lines and holds them
 * until Python takes them in batches ({@link #drain}): one py4j call per batch instead of one
 * callback plus one call per event. Registered on its own bus queue, it is called on that
 * queue's one thread, so lines are kept in event order. Python decides what the events mean.
 *
 * <p>A stage's RDD list (every narrow ancestor of its RDD: for a DataFrame loop, tens of kB of
 * JSON per stage, growing with every iteration) is sent once, in the job start that plans the
 * stage; the stage's own submitted and completed events then come without it ({@code "RDD
 * Info": []}, which no stage has) and Python takes the list from the job start. Attempts after
 * the first are sent whole.
 *
 * <p>With {@code cachedStagesOnly}, task events of a stage none of whose RDDs is persisted are
 * not converted nor sent (a task end still is when it wrote shuffle data, whose timing corrects
 * the write cost, or failed): a cache manager reads nothing else from them, and they are most
 * of the events of a program's plain jobs.
 */
public final class EventBuffer extends SparkListener {
  private final JsonProtocolOptions options;
  private final int capacity;
  private final int maxBatch;
  private final long lingerNanos;
  private final boolean cachedStagesOnly;
  /** Running stage attempts with a persisted RDD (touched on the bus thread only). */
  private final Set<Long> cachedStages = new HashSet<>();
  /** Stages a sent job start described, RDD list included (touched on the bus thread only). */
  private final Set<Integer> describedStages = new HashSet<>();
  /** The stages each running job planned: forgotten at its end, run or skipped. */
  private final Map<Integer, List<Integer>> jobStages = new HashMap<>();
  /** How long the bus thread waits for room before the buffer counts as stalled. */
  private static final long STALL_NANOS = TimeUnit.SECONDS.toNanos(2);

  // guarded by this
  private final ArrayDeque<String> lines = new ArrayDeque<>();
  private long buffered;
  private boolean closed;
  private boolean flushRequested;
  private boolean stalled; // Python took nothing for STALL_NANOS while full: drop, do not wait
  private long dropped;
  private long conversionErrors;
  private long skipped; // task events of stages without a persisted RDD (cachedStagesOnly)
  private String lastError = "";

  /**
   * @param capacity lines held at most; beyond it the bus thread waits, so Spark's own bounded
   *     queue (and its dropped-events counter) takes over when Python falls behind; after a
   *     wait of 2 s with no line taken, events are dropped (and counted) until Python drains
   * @param maxBatch lines handed over by one {@link #drain} at most
   * @param lingerMillis how long {@link #drain} lets a batch grow after its first line
   * @param cachedStagesOnly send task events only of stages with a persisted RDD (see above)
   */
  public EventBuffer(int capacity, int maxBatch, long lingerMillis, boolean cachedStagesOnly) {
    // task ends without the accumulator list: half the bytes, nothing the parser reads
    this.options =
        new JsonProtocolOptions(
            new SparkConf(false).set("spark.eventLog.includeTaskMetricsAccumulators", "false"));
    this.capacity = capacity;
    this.maxBatch = maxBatch;
    this.lingerNanos = TimeUnit.MILLISECONDS.toNanos(lingerMillis);
    this.cachedStagesOnly = cachedStagesOnly;
  }

  private static long attempt(int stageId, int attemptId) {
    return ((long) stageId << 32) | (attemptId & 0xffffffffL);
  }

  private boolean skips(int stageId, int attemptId) {
    if (!cachedStagesOnly || cachedStages.contains(attempt(stageId, attemptId))) {
      return false;
    }
    synchronized (this) {
      skipped++;
    }
    return true;
  }

  /** Converts and holds the event; false if it was not kept (not convertible, dropped). */
  private boolean add(SparkListenerEvent event) {
    String line;
    try {
      line = JsonProtocol.sparkEventToJsonString(event, options);
    } catch (RuntimeException e) {
      synchronized (this) {
        conversionErrors++;
        lastError = e.toString();
      }
      return false;
    }
    synchronized (this) {
      try {
        long deadline = System.nanoTime() + STALL_NANOS;
        while (lines.size() >= capacity && !closed && !stalled) {
          long left = deadline - System.nanoTime();
          if (left <= 0) {
            stalled = true; // never hold Spark's bus (and its stop) on a Python that is gone
            break;
          }
          TimeUnit.NANOSECONDS.timedWait(this, left);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return false;
      }
      if (closed) {
        return false;
      }
      if (lines.size() >= capacity) {
        dropped++;
        return false;
      }
      lines.add(line);
      buffered++;
      notifyAll();
      return true;
    }
  }

  /**
   * The next lines in event order, joined by newlines (JSON escapes its own): waits up to
   * {@code timeoutMillis} for a first line ("" if none came), then lets the batch grow for the
   * linger time unless it is full or {@link #flush} was called. Null once closed and empty.
   */
  public synchronized String drain(long timeoutMillis) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
    while (lines.isEmpty() && !closed) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        return "";
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
    if (lines.isEmpty()) {
      return null;
    }
    long lingerEnd = System.nanoTime() + lingerNanos;
    while (!flushRequested && !closed && lines.size() < maxBatch) {
      long left = lingerEnd - System.nanoTime();
      if (left <= 0) {
        break;
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
    flushRequested = false;
    stalled = false;
    StringBuilder batch = new StringBuilder();
    for (int n = 0; n < maxBatch && !lines.isEmpty(); n++) {
      if (n > 0) {
        batch.append('\n');
      }
      batch.append(lines.poll());
    }
    notifyAll(); // room again for a bus thread waiting on capacity
    return batch.toString();
  }

  /** Ends the current linger at once; returns how many events were ever buffered. */
  public synchronized long flush() {
    flushRequested = true;
    notifyAll();
    return buffered;
  }

  /** {@link #flush} and {@link #dropped} in one py4j call: "buffered dropped". */
  public synchronized String flushCounts() {
    return flush() + " " + dropped;
  }

  /** Events ever buffered (the count a Python waiter must have handled to be in sync). */
  public synchronized long buffered() {
    return buffered;
  }

  /** Events dropped because the buffer stayed full (Python stopped draining). */
  public synchronized long dropped() {
    return dropped;
  }

  /** Task events not sent: their stage had no persisted RDD ({@code cachedStagesOnly}). */
  public synchronized long skipped() {
    return skipped;
  }

  /** Events Spark passed that JsonProtocol could not convert (and the last error). */
  public synchronized String conversionErrors() {
    return conversionErrors == 0 ? "" : conversionErrors + ": " + lastError;
  }

  /** Stops buffering and wakes every waiter; drops lines not yet drained. Idempotent. */
  public synchronized void close() {
    closed = true;
    lines.clear();
    notifyAll();
  }

  @Override
  public String toString() {
    return "blaze-event-buffer@" + Integer.toHexString(System.identityHashCode(this));
  }

  @Override
  public void onStageSubmitted(SparkListenerStageSubmitted event) {
    try {
      var info = event.stageInfo();
      var rdds = info.rddInfos().iterator();
      while (cachedStagesOnly && rdds.hasNext()) {
        if (rdds.next().storageLevel().isValid()) {
          cachedStages.add(attempt(info.stageId(), info.attemptNumber()));
          break;
        }
      }
    } catch (RuntimeException e) {
      // a malformed event: add() counts it as not convertible
    }
    add(described(event.stageInfo()) ? withoutRdds(event) : event);
  }

  @Override
  public void onStageCompleted(SparkListenerStageCompleted event) {
    boolean slim = described(event.stageInfo());
    add(slim ? withoutRdds(event) : event);
    try {
      cachedStages.remove(attempt(event.stageInfo().stageId(), event.stageInfo().attemptNumber()));
      describedStages.remove(event.stageInfo().stageId());
    } catch (RuntimeException e) {
      // a malformed event: add() counted it
    }
  }

  @Override
  public void onJobStart(SparkListenerJobStart event) {
    if (!add(event)) {
      return; // Python never got these RDD lists: the stages' own events carry them
    }
    try {
      List<Integer> planned = new ArrayList<>();
      var stages = event.stageInfos().iterator();
      while (stages.hasNext()) {
        planned.add(stages.next().stageId());
      }
      describedStages.addAll(planned);
      jobStages.put(event.jobId(), planned);
    } catch (RuntimeException e) {
      // a malformed event: its stages are sent whole
    }
  }

  /** Whether the first attempt of this stage had its RDD list sent in a job start. */
  private boolean described(StageInfo info) {
    try {
      return info.attemptNumber() == 0 && describedStages.contains(info.stageId());
    } catch (RuntimeException e) {
      return false;
    }
  }

  private static StageInfo slimCopy(StageInfo info) {
    var copy =
        new StageInfo(
            info.stageId(),
            info.attemptNumber(),
            info.name(),
            info.numTasks(),
            scala.collection.immutable.Seq$.MODULE$.<RDDInfo>empty(),
            info.parentIds(),
            "",
            info.taskMetrics(),
            info.taskLocalityPreferences(),
            info.shuffleDepId(),
            info.resourceProfileId(),
            info.isShufflePushEnabled(),
            info.shuffleMergerCount());
    copy.submissionTime_$eq(info.submissionTime());
    copy.completionTime_$eq(info.completionTime());
    copy.failureReason_$eq(info.failureReason());
    return copy;
  }

  private static SparkListenerEvent withoutRdds(SparkListenerStageSubmitted event) {
    try {
      return new SparkListenerStageSubmitted(slimCopy(event.stageInfo()), event.properties());
    } catch (RuntimeException e) {
      return event;
    }
  }

  private static SparkListenerEvent withoutRdds(SparkListenerStageCompleted event) {
    try {
      return new SparkListenerStageCompleted(slimCopy(event.stageInfo()));
    } catch (RuntimeException e) {
      return event;
    }
  }

  @Override
  public void onJobEnd(SparkListenerJobEnd event) {
    add(event);
    List<Integer> planned = jobStages.remove(event.jobId());
    if (planned != null) {
      describedStages.removeAll(planned);
    }
  }

  @Override
  public void onTaskStart(SparkListenerTaskStart event) {
    if (wanted(event, false)) {
      add(event); // the cost model stops counting the stage's read of that split as future
    }
  }

  @Override
  public void onTaskEnd(SparkListenerTaskEnd event) {
    if (wanted(event, true)) {
      add(event);
    }
  }

  /** Whether a task event is sent (see the class comment); a malformed one is, to be counted. */
  private boolean wanted(SparkListenerEvent event, boolean end) {
    try {
      if (end) {
        var taskEnd = (SparkListenerTaskEnd) event;
        var metrics = taskEnd.taskMetrics();
        boolean wroteShuffle = metrics != null && metrics.shuffleWriteMetrics().bytesWritten() > 0;
        return wroteShuffle || taskEnd.reason() != Success$.MODULE$
            || !skips(taskEnd.stageId(), taskEnd.stageAttemptId());
      }
      var start = (SparkListenerTaskStart) event;
      return !skips(start.stageId(), start.stageAttemptId());
    } catch (RuntimeException e) {
      return true;
    }
  }

  @Override
  public void onBlockUpdated(SparkListenerBlockUpdated event) {
    add(event);
  }

  @Override
  public void onUnpersistRDD(SparkListenerUnpersistRDD event) {
    add(event);
  }

  @Override
  public void onApplicationEnd(SparkListenerApplicationEnd event) {
    add(event);
  }
}
