package org.blazespark;

import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.SparkPlugin;

/** Names blaze-spark's two plugin halves to Spark (set {@code spark.plugins} to this class). */
public final class BlazePlugin implements SparkPlugin {
  @Override
  public DriverPlugin driverPlugin() {
    return new BlazeDriverPlugin();
  }

  @Override
  public ExecutorPlugin executorPlugin() {
    return new BlazeExecutorPlugin();
  }
}
