package org.blazespark;

/** One decision of the driver's engine for one executor: spill or drop one RDD block. */
public record Order(int rddId, int split, boolean spill) {}
