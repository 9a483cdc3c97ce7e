package org.blazespark;

/** An executor half asks for the orders queued for it, reporting what it did with earlier ones. */
public record FetchOrders(String executorId, java.util.List<String> outcomes)
    implements BlazeMessage {}
