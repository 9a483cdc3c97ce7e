package org.blazespark;

import java.util.Map;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;

/** Runs inside each executor and reports to the driver half; registers itself at start. */
public final class BlazeExecutorPlugin implements ExecutorPlugin {
  /** Spark's handle to the driver half; the task callbacks ask through it. */
  private PluginContext context;

  @Override
  public void init(PluginContext ctx, Map<String, String> extraConf) {
    context = ctx;
    try {
      // ask, not send: the executor starts only once the driver half has recorded it
      ctx.ask(new ExecutorRegistered(ctx.executorID()));
    } catch (Exception e) {
      throw new IllegalStateException(
          "blaze executor plugin: executor " + ctx.executorID() + " could not register", e);
    }
  }
}
