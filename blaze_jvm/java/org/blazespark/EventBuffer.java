package org.blazespark;

import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;
import org.apache.spark.SparkConf;
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
import org.apache.spark.util.JsonProtocol;
import org.apache.spark.util.JsonProtocolOptions;

/**
 * Turns the listener-bus events blaze's lineage reads into event-log JSON lines and holds them
 * until Python takes them in batches ({@link #drain}): one py4j call per batch instead of one
 * callback plus one call per event. Registered on its own bus queue, it is called on that
 * queue's one thread, so lines are kept in event order. Python decides what the events mean.
 */
public final class EventBuffer extends SparkListener {
  private final JsonProtocolOptions options;
  private final int capacity;
  private final int maxBatch;
  private final long lingerNanos;
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
  private String lastError = "";

  /**
   * @param capacity lines held at most; beyond it the bus thread waits, so Spark's own bounded
   *     queue (and its dropped-events counter) takes over when Python falls behind; after a
   *     wait of 2 s with no line taken, events are dropped (and counted) until Python drains
   * @param maxBatch lines handed over by one {@link #drain} at most
   * @param lingerMillis how long {@link #drain} lets a batch grow after its first line
   */
  public EventBuffer(int capacity, int maxBatch, long lingerMillis) {
    // task ends without the accumulator list: half the bytes, nothing the parser reads
    this.options =
        new JsonProtocolOptions(
            new SparkConf(false).set("spark.eventLog.includeTaskMetricsAccumulators", "false"));
    this.capacity = capacity;
    this.maxBatch = maxBatch;
    this.lingerNanos = TimeUnit.MILLISECONDS.toNanos(lingerMillis);
  }

  private void add(SparkListenerEvent event) {
    String line;
    try {
      line = JsonProtocol.sparkEventToJsonString(event, options);
    } catch (RuntimeException e) {
      synchronized (this) {
        conversionErrors++;
        lastError = e.toString();
      }
      return;
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
        return;
      }
      if (closed) {
        return;
      }
      if (lines.size() >= capacity) {
        dropped++;
        return;
      }
      lines.add(line);
      buffered++;
      notifyAll();
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

  /** Events ever buffered (the count a Python waiter must have handled to be in sync). */
  public synchronized long buffered() {
    return buffered;
  }

  /** Events dropped because the buffer stayed full (Python stopped draining). */
  public synchronized long dropped() {
    return dropped;
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
    add(event);
  }

  @Override
  public void onStageCompleted(SparkListenerStageCompleted event) {
    add(event);
  }

  @Override
  public void onJobStart(SparkListenerJobStart event) {
    add(event);
  }

  @Override
  public void onJobEnd(SparkListenerJobEnd event) {
    add(event);
  }

  @Override
  public void onTaskStart(SparkListenerTaskStart event) {
    add(event); // the cost model stops counting the stage's read of that split as future
  }

  @Override
  public void onTaskEnd(SparkListenerTaskEnd event) {
    add(event);
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
