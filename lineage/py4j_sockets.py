"""py4j's connections without Nagle's algorithm: a reply over 8 kB no longer waits 40 ms.

Why: py4j's Java side writes a reply of more than its 8 kB writer buffer in two socket
writes; with Nagle's algorithm on, the second waits for the ACK of the first, which Linux's
Python side delays by 40 ms (py4j issue 516; fixed upstream in py4j PR 592, after the py4j
0.10.9.x PySpark 4.3 ships). Measured here: a 100 kB string returned in 42 ms per call
instead of 1.2 ms. The manager's event drain returns batches of tens of kB for every
DataFrame job (its stages list the whole plan's RDDs), so each job's events reached Python
40 ms late and a program waiting on them ran that much slower per action.

What: ``TCP_NODELAY`` on the JVM end of every py4j connection open now, found through the
gateway server's (private) connection list. A connection a new Python thread opens later is
not covered; the manager calls this again from its own threads once they have connected.
Nothing else about the connections changes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["disable_nagle"]


def disable_nagle(sc: Any) -> int:
    """Set ``TCP_NODELAY`` on the JVM end of ``sc``'s open py4j connections; returns how
    many were changed (0 when the gateway is not py4j's or its internals differ)."""
    try:
        gateway = sc._gateway
        server = gateway.java_gateway_server
        field = gateway.jvm.java.lang.Class.forName("py4j.GatewayServer").getDeclaredField(
            "connections"
        )
        field.setAccessible(True)
        connections = field.get(server)
        changed = 0
        for index in range(connections.size()):
            socket = connections.get(index).getSocket()
            if socket is not None and not socket.getTcpNoDelay():
                socket.setTcpNoDelay(True)
                changed += 1
        return changed
    except Exception:  # another gateway (Spark Connect, a py4j without the list): leave it
        return 0
