package org.blazespark;

/** An executor half says it is alive, or (problem non-null) why it will not carry out orders. */
public record ExecutorRegistered(String executorId, String problem) implements BlazeMessage {}
