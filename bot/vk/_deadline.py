"""Reading an HTTP body against an overall deadline.

`requests` timeouts are per read: a server that sends one byte every half second never trips
them. Here the body is read with at most one socket read per chunk (`read1`), and the clock is
checked between reads, so a call ends within its deadline plus one read timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import requests
import urllib3.exceptions

__all__ = ["DeadlineExceededError", "chunks_within"]


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
