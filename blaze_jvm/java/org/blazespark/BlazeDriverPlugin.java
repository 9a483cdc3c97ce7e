package org.blazespark;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.spark.SparkContext;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.PluginContext;

/** Receives the executor halves' messages on the driver and keeps what they report. */
public final class BlazeDriverPlugin implements DriverPlugin {
  /** The driver half of the running SparkContext (one per JVM), so Python can reach it. */
  private static final AtomicReference<BlazeDriverPlugin> ACTIVE = new AtomicReference<>();

  private final Set<String> registered = ConcurrentHashMap.newKeySet();

  @Override
  public Map<String, String> init(SparkContext sc, PluginContext context) {
    ACTIVE.set(this);
    return Collections.emptyMap();
  }

  @Override
  public Object receive(Object message) {
    if (message instanceof ExecutorRegistered m) {
      registered.add(m.executorId());
      return Boolean.TRUE;
    }
    throw new IllegalArgumentException(
        "blaze driver plugin: unknown message " + message.getClass().getName());
  }

  @Override
  public void shutdown() {
    ACTIVE.compareAndSet(this, null);
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
