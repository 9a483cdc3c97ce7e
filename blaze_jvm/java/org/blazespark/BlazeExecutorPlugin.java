package org.blazespark;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Runs inside each executor: fetches the driver's orders when a task starts and every 50 ms
 * and carries them out, and as each task ends reports the blocks its reads cached back in
 * memory ({@link Promotions}); on any problem it stands aside and Spark behaves as without
 * it. */
public final class BlazeExecutorPlugin implements ExecutorPlugin {
  private static final Logger LOG = LoggerFactory.getLogger(BlazeExecutorPlugin.class);
  private static final long POLL_MS = 50;
  private static final int MAX_RETRIES = 200; // a block a task keeps locked: ~10 s of polls
  private static final int MAX_FAILED_ASKS = 5;

  private PluginContext context;
  private volatile boolean standing = false; // registered and carrying out orders
  private ScheduledExecutorService poller;
  private final List<String> outcomes = new ArrayList<>();
  private final Map<Order, Integer> retries = new java.util.LinkedHashMap<>();
  private int failedAsks = 0;
  private final java.util.concurrent.atomic.AtomicLong taskStartNanos =
      new java.util.concurrent.atomic.AtomicLong();
  // a task ended since the last poll: blocks may have gone since (held levels to forget)
  private final java.util.concurrent.atomic.AtomicBoolean tasksEnded =
      new java.util.concurrent.atomic.AtomicBoolean();
  private final Promotions promotions = new Promotions();

  @Override
  public void init(PluginContext ctx, Map<String, String> extraConf) {
    context = ctx;
    String problem = versionProblem();
    try {
      ctx.ask(new ExecutorRegistered(ctx.executorID(), problem));
    } catch (Exception e) {
      LOG.warn("blaze: executor {} cannot reach the driver's plugin ({}); Spark's own caching "
          + "applies here", ctx.executorID(), e.toString());
      return;
    }
    if (problem != null) {
      LOG.warn("blaze: {}; Spark's own caching applies on executor {}", problem, ctx.executorID());
      return;
    }
    standing = true;
    poller = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "blaze-orders");
      t.setDaemon(true);
      return t;
    });
    poller.scheduleWithFixedDelay(this::fetch, POLL_MS, POLL_MS, TimeUnit.MILLISECONDS);
  }

  @Override
  public void onTaskStart() {
    if (standing) {
      // fetch now, off the task's thread: the orders are carried out while the task computes,
      // before it stores its block; the task itself pays only the hand-off
      long start = System.nanoTime();
      poller.execute(this::fetch);
      taskStartNanos.set(Math.max(System.nanoTime() - start, 1));
    }
  }

  @Override
  public void onTaskSucceeded() {
    taskEnded();
  }

  @Override
  public void onTaskFailed(org.apache.spark.TaskFailedReason reason) {
    taskEnded();
  }

  /** On the task's own thread, which Spark calls before it sends the task's end to the
   * driver: the promotions its reads made reach the master — and the driver's listener —
   * ahead of the task's end, so the book holds them when the job that read them ends. */
  private void taskEnded() {
    if (!standing) {
      return;
    }
    tasksEnded.set(true);
    try {
      promotions.report(org.apache.spark.SparkEnv.get().blockManager());
    } catch (Exception e) {
      LOG.debug("blaze: promotions not reported ({})", e.toString());
    }
  }

  @Override
  public void shutdown() {
    standing = false;
    if (poller != null) {
      poller.shutdownNow();
    }
  }

  /** Report what was done, take the new orders, carry them out (locked blocks wait a poll). */
  private synchronized void fetch() {
    if (!standing) {
      return;
    }
    List<String> report = new ArrayList<>(outcomes);
    long taskStart = taskStartNanos.getAndSet(0);
    if (taskStart > 0) {
      report.add("timing " + lastAskMicros + " " + taskStart / 1000);
    }
    int[] due;
    try {
      long start = System.nanoTime();
      due = (int[]) context.ask(new FetchOrders(context.executorID(), report));
      lastAskMicros = (System.nanoTime() - start) / 1000;
      outcomes.clear();
      failedAsks = 0;
    } catch (Exception e) {
      if (++failedAsks >= MAX_FAILED_ASKS) {
        standing = false;
        LOG.warn("blaze: executor {} lost the driver's plugin ({}); Spark's own caching applies "
            + "here from now on", context.executorID(), e.toString());
      }
      return;
    }
    for (int i = 0; i + 2 < due.length; i += 3) {
      retries.putIfAbsent(new Order(due[i], due[i + 1], due[i + 2]), 0);
    }
    var it = retries.entrySet().iterator();
    while (it.hasNext()) {
      var entry = it.next();
      Order order = entry.getKey();
      String outcome;
      try {
        outcome = BlockMover.apply(order);
      } catch (Exception e) {
        outcome = "failed:" + e.getClass().getSimpleName();
      }
      if (outcome.equals("locked") && entry.getValue() < MAX_RETRIES) {
        entry.setValue(entry.getValue() + 1);
        continue;
      }
      outcomes.add(order.rddId() + " " + order.split() + " " + order.word() + " " + outcome);
      it.remove();
    }
    if (tasksEnded.getAndSet(false)) {
      try { // held levels of blocks removed since (unpersisted, dropped)
        BlockMover.forgetGone(org.apache.spark.SparkEnv.get().blockManager());
      } catch (Exception e) {
        LOG.debug("blaze: held levels not pruned ({})", e.toString());
      }
    }
  }

  private long lastAskMicros = 0;

  /** Why this jar cannot run in this Spark (built for another version), or null. */
  static String versionProblem() {
    try (InputStream in = BlazeExecutorPlugin.class.getResourceAsStream("built-for-spark")) {
      String built = in == null ? "unknown" : new String(in.readAllBytes(), StandardCharsets.UTF_8).trim();
      Object pkg = Class.forName("org.apache.spark.package$").getField("MODULE$").get(null);
      String running = (String) pkg.getClass().getMethod("SPARK_VERSION").invoke(pkg);
      return built.equals(running) ? null
          : "the blaze-spark plugin jar was built for Spark " + built + ", this is Spark " + running;
    } catch (Exception e) {
      return "the blaze-spark plugin cannot read its Spark version: " + e;
    }
  }
}
