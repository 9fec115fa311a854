"""HTTP against an overall deadline.

`requests` timeouts are per read: a server that sends one byte every half second never trips
them. Two guards make every exchange end within its deadline (plus at most one read timeout):
while the status line and headers are read, a watchdog shuts the socket down when the deadline
passes (`DeadlineAdapter`); the body is read with at most one socket read per chunk (`read1`)
and the clock is checked between reads (`chunks_within`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = ["DeadlineAdapter", "DeadlineExceededError", "chunks_within"]

_local = threading.local()


class DeadlineExceededError(requests.exceptions.ReadTimeout):
    """The whole answer did not arrive within the overall deadline."""


def chunks_within(
    raw: Any,
    *,
    deadline: float,
    chunk_size: int = 64 * 1024,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[bytes]:
    """The decoded body of a streamed `urllib3` response, chunk by chunk, until EOF; raises
    `DeadlineExceededError` once `clock()` passes `deadline`, and the `requests` twin of any
    transport failure (ReadTimeout, ConnectionError)."""
    while True:
        if clock() > deadline:
            raise DeadlineExceededError("the answer did not complete within its deadline")
        try:
            data = raw.read1(chunk_size, decode_content=True)
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise requests.exceptions.ReadTimeout(str(exc)) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise requests.exceptions.ConnectionError(str(exc)) from exc
        if not data:
            return
        yield data


class _HeadersWatchdog:
    """Mixed into urllib3's connections: reading the response head ends at the deadline."""

    sock: socket.socket | None
    _deadline_cut = False

    def getresponse(self) -> Any:
        deadline = getattr(_local, "deadline", None)
        if deadline is None:
            return super().getresponse()  # type: ignore[misc]
        self._deadline_cut = False
        timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._cut)
        timer.daemon = True
        timer.start()
        try:
            response = super().getresponse()  # type: ignore[misc]
        finally:
            timer.cancel()
        if self._deadline_cut:
            # Cut mid-head, http.client may have taken the headers read so far for all of
            # them: never hand such a response on.
            response.close()
            raise TimeoutError("the response head did not arrive within the deadline")
        return response

    def _cut(self) -> None:
        self._deadline_cut = True
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked read with an error


class _WatchedHTTPConnection(_HeadersWatchdog, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_HeadersWatchdog, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """An adapter whose every request gets its response head within `deadline_seconds` of
    being sent, or fails with `DeadlineExceededError` (a `requests.ReadTimeout`)."""

    def __init__(self, deadline_seconds: float | None = None, **kwargs: Any):
        self._deadline_seconds = deadline_seconds
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # type: ignore[override]
        if self._deadline_seconds is None:
            return super().send(request, stream, timeout, verify, cert, proxies)
        deadline = time.monotonic() + self._deadline_seconds
        previous = getattr(_local, "deadline", None)
        _local.deadline = deadline
        try:
            return super().send(request, stream, timeout, verify, cert, proxies)
        except requests.RequestException as exc:
            if time.monotonic() >= deadline and not isinstance(exc, DeadlineExceededError):
                raise DeadlineExceededError(
                    "the answer did not complete within its deadline"
                ) from exc
            raise
        finally:
            _local.deadline = previous
