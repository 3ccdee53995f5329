"""Free TCP ports on 127.0.0.1 for tests that start TF_CONFIG clusters."""

import socket


def free_ports(n: int) -> list:
    """``n`` distinct ports that were free a moment ago (bound together, then released)."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
