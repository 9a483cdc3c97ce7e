package org.blazespark;

/** An executor half says it is alive: sent once from {@link BlazeExecutorPlugin#init}. */
public record ExecutorRegistered(String executorId) implements BlazeMessage {}
