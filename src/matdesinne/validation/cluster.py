"""Where the DFT calculations run: an embedded local Dask cluster, or an existing one.

:func:`check_cluster` refuses a bad request in one line before any file or worker exists;
:func:`dask_client` then opens the client.
"""

from __future__ import annotations

import logging
import os
import socket
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlsplit

from matdesinne.errors import UserInputError

#: Dask comms reached through a host and a TCP port; an address without a scheme is tcp.
SCHEMES = ("tcp", "tls")


def scheduler_address(address: str) -> tuple[str, int]:
    """The host and port of a scheduler address such as ``tcp://host:8786``, or a one-line error."""
    shape = f"scheduler={address}: expected an address like tcp://host:8786 (or tls://host:port)"
    if not isinstance(address, str):
        raise UserInputError(shape)
    try:
        parsed = urlsplit(address if "://" in address else f"tcp://{address}")
        host, port = parsed.hostname, parsed.port
    except ValueError:  # a port that is not a number or out of range, a broken [IPv6] host
        raise UserInputError(shape) from None
    if parsed.scheme not in SCHEMES or not host or not port or parsed.path.strip("/") or parsed.query:
        raise UserInputError(shape)
    return host, port


def check_cluster(scheduler: str | None = None, workers: int | None = None, timeout: float = 5.0) -> None:
    """Fail in one line, and fast, on a malformed scheduler address, one that nothing listens
    at, or a local cluster size given for a scheduler's cluster."""
    if scheduler is None:
        return
    if workers is not None:
        raise UserInputError("workers= sizes the local cluster; the cluster at scheduler= brings its own workers")
    host, port = scheduler_address(scheduler)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except (OSError, UnicodeError) as err:  # UnicodeError: a host name IDNA cannot encode
        reason = getattr(err, "strerror", None) or err
        raise UserInputError(f"cannot reach the Dask scheduler at {scheduler} ({reason})") from None


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[object]:
    """A Dask client: on the cluster at ``scheduler`` (see :func:`check_cluster` for a fast
    one-line failure), or on an embedded local cluster of ``workers`` single-threaded worker
    processes (default: one per core)."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as err:
            raise UserInputError(f"cannot connect to the Dask scheduler at {scheduler} ({err})") from None
        with client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    # The scheduler's HTTP server takes a free port (":0"), so runs side by side do not clash.
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client
