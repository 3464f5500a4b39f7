"""Free TCP ports on 127.0.0.1.

Asking the kernel for port 0 gives a port nobody holds right now; another process may still
take it before our server binds it, so servers retry their start on a fresh port when that
happens.
"""

from __future__ import annotations

import socket
import time

from devstack import HOST

# Ports handed out by this process recently: the kernel may hand the same one out twice when
# the first server has not bound it yet, so remember and skip them.
_recent: dict[int, float] = {}
_RECENT_SECONDS = 120.0


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that is free now (and not handed out here in the last 2 minutes)."""
    now = time.monotonic()
    for port, at in list(_recent.items()):
        if now - at > _RECENT_SECONDS:
            del _recent[port]
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in _recent:
            _recent[port] = now
            return port
    raise OSError("could not find a free TCP port")


def free_ports(count: int, host: str = HOST) -> list[int]:
    """``count`` distinct free ports."""
    return [free_port(host) for _ in range(count)]


def port_is_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
