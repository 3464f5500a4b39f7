"""``[core] hostname_callable`` of the Celery test's workers: each reports its own name.

Both workers run on this machine, so the host name alone cannot tell which one ran a task.
"""

import os
import socket


def hostname() -> str:
    return os.environ.get("RESTORABLE_TEST_WORKER") or socket.getfqdn()
