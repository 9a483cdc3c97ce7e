package org.blazespark;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.Set;
import java.util.StringJoiner;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.spark.SparkContext;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.PluginContext;

/** The driver half: a mailbox of the Python engine's orders per executor, and their outcomes. */
public final class BlazeDriverPlugin implements DriverPlugin {
  /** The driver half of the running SparkContext (one per JVM), so Python can reach it. */
  private static final AtomicReference<BlazeDriverPlugin> ACTIVE = new AtomicReference<>();

  private static final int MAX_SAMPLES = 10_000;

  private final Set<String> registered = ConcurrentHashMap.newKeySet();
  private final Map<String, Queue<Order>> mailbox = new ConcurrentHashMap<>();
  private final Queue<String> outcomes = new ConcurrentLinkedQueue<>();
  private final Queue<String> samples = new ConcurrentLinkedQueue<>();
  private final AtomicInteger sampleCount = new AtomicInteger();
  // per executor: when it last fetched its orders (a lost executor stops fetching)
  private final Map<String, Long> lastFetch = new ConcurrentHashMap<>();

  @Override
  public Map<String, String> init(SparkContext sc, PluginContext context) {
    ACTIVE.set(this);
    return Collections.emptyMap();
  }

  @Override
  public Object receive(Object message) {
    if (message instanceof FetchOrders m) {
      lastFetch.put(m.executorId(), System.nanoTime());
      for (String outcome : m.outcomes()) {
        if (outcome.startsWith("timing ")) {
          if (sampleCount.incrementAndGet() <= MAX_SAMPLES) {
            samples.add(m.executorId() + " " + outcome.substring(7));
          }
        } else {
          outcomes.add(m.executorId() + " " + outcome);
        }
      }
      // a JDK type only: an executor deserializes replies without the plugin jar's classes
      ArrayList<Order> due = new ArrayList<>();
      Queue<Order> queue = mailbox.get(m.executorId());
      for (Order o = queue == null ? null : queue.poll(); o != null; o = queue.poll()) {
        due.add(o);
      }
      int[] encoded = new int[3 * due.size()];
      for (int i = 0; i < due.size(); i++) {
        encoded[3 * i] = due.get(i).rddId();
        encoded[3 * i + 1] = due.get(i).split();
        encoded[3 * i + 2] = due.get(i).action();
      }
      return encoded;
    }
    if (message instanceof ExecutorRegistered m) {
      if (m.problem() == null) {
        registered.add(m.executorId());
      } else {
        outcomes.add(m.executorId() + " unavailable " + m.problem());
      }
      return Boolean.TRUE;
    }
    throw new IllegalArgumentException(
        "blaze driver plugin: unknown message " + message.getClass().getName());
  }

  @Override
  public void shutdown() {
    ACTIVE.compareAndSet(this, null);
  }

  /** Queue an order ({@link Order#DROP}, {@link Order#SPILL} or {@link Order#TO_DISK}) for an
   * executor's half; false when no half of that executor registered. */
  public static boolean order(String executorId, int rddId, int split, int action) {
    BlazeDriverPlugin active = ACTIVE.get();
    if (active == null || !active.registered.contains(executorId)) {
      return false;
    }
    active.mailbox
        .computeIfAbsent(executorId, k -> new ConcurrentLinkedQueue<>())
        .add(new Order(rddId, split, action));
    return true;
  }

  /** Queue many orders in one py4j call: lines "executor rdd split action" ({@link #order}'s
   * arguments). Returns the lines of executors with no registered half (not queued). */
  public static String orderAll(String lines) {
    StringJoiner refused = new StringJoiner("\n");
    for (String line : lines.split("\n")) {
      String[] f = line.trim().split(" ");
      if (f.length != 4
          || !order(f[0], Integer.parseInt(f[1]), Integer.parseInt(f[2]), Integer.parseInt(f[3]))) {
        if (!line.isBlank()) {
          refused.add(line);
        }
      }
    }
    return refused.toString();
  }

  /** Lines "executor rdd split spill|drop outcome" (or "executor unavailable why") since the
   * last call, oldest first, joined by newlines: one string is one py4j round trip, where a
   * Java list costs one per element plus an exception to end the iteration. */
  public static String drainOutcomes() {
    return drain(ACTIVE.get() == null ? null : ACTIVE.get().outcomes);
  }

  /** Lines "executor askMicros taskStartMicros" measured by executor halves since the last
   * call, joined by newlines. */
  public static String drainTimings() {
    BlazeDriverPlugin active = ACTIVE.get();
    if (active != null) {
      active.sampleCount.set(0);
    }
    return drain(active == null ? null : active.samples);
  }

  private static String drain(Queue<String> queue) {
    StringJoiner lines = new StringJoiner("\n");
    for (String s = queue == null ? null : queue.poll(); s != null; s = queue.poll()) {
      lines.add(s);
    }
    return lines.toString();
  }

  /** Executors that fetched their orders in the last second, space-separated: the others
   * are lost or stuck, and an order still queued for them will not be reported done. */
  public static String liveExecutors() {
    BlazeDriverPlugin active = ACTIVE.get();
    if (active == null) {
      return "";
    }
    long now = System.nanoTime();
    StringJoiner ids = new StringJoiner(" ");
    for (var entry : active.lastFetch.entrySet()) {
      if (now - entry.getValue() < 1_000_000_000L) {
        ids.add(entry.getKey());
      }
    }
    return ids.toString();
  }

  /** Executor ids that registered with the running context's driver half, sorted; empty if none. */
  public static List<String> registeredExecutors() {
    BlazeDriverPlugin active = ACTIVE.get();
    List<String> ids = active == null ? new ArrayList<>() : new ArrayList<>(active.registered);
    Collections.sort(ids);
    return ids;
  }

  /** Whether a driver half is running in this JVM (the plugin was loaded by spark.plugins). */
  public static boolean isActive() {
    return ACTIVE.get() != null;
  }
}
