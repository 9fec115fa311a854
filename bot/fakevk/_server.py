"""The fake VK over real HTTP on loopback: `ThreadingHTTPServer` in a daemon thread."""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot.fakevk._state import FakeVk, Response

__all__ = ["FakeVkServer"]

logger = logging.getLogger("petmatch.fakevk")

_STREAM_CHUNK = 64 * 1024


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeVk

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (timeouts, size caps) is normal here, not an error.
        logger.debug("fake VK: client %s went away", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "nginx"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake VK: " + format, *args)

    def do_GET(self) -> None:
        self._dispatch(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._dispatch(self.rfile.read(length) if length else b"")

    def _dispatch(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        fake = self.server.fake
        try:
            if parts.path.startswith("/method/"):
                params = dict(parse_qsl(parts.query, keep_blank_values=True))
                if body:
                    params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
                response = fake.handle_method(parts.path[len("/method/") :], params)
            elif parts.path.startswith("/photos/"):
                host = self.headers.get("Host", "127.0.0.1")
                response = fake.handle_photo(parts.path, f"http://{host}{self.path}")
            else:
                response = Response(404, b"not found", "text/plain")
            self._send(response)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            logger.debug("fake VK: client hung up during %s", parts.path)

    def _send(self, response: Response) -> None:
        if response.delay:
            time.sleep(response.delay)
        if response.trickle_head:
            self._trickle_all(response)
            return
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        if response.location:
            self.send_header("Location", response.location)
        if response.stream_bytes:
            self.end_headers()
            self.wfile.write(response.body)
            sent = len(response.body)
            chunk = b"\x00" * _STREAM_CHUNK
            while sent < response.stream_bytes:
                self.wfile.write(chunk)
                sent += len(chunk)
            return
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.trickle_seconds:
            self._trickle(response)
            return
        self.wfile.write(response.body)

    def _trickle_all(self, response: Response) -> None:
        """The status line and headers trickle too: the client never even sees a status."""
        head = (
            f"HTTP/1.1 {response.status} OK\r\nContent-Type: {response.content_type}\r\n"
            f"Content-Length: {len(response.body)}\r\n\r\n"
        ).encode("ascii")
        for offset in range(len(head)):
            self.wfile.write(head[offset : offset + 1])
            self.wfile.flush()
            time.sleep(response.trickle_seconds)
        self.wfile.write(response.body)

    def _trickle(self, response: Response) -> None:
        """One byte, a pause, one byte...: every read succeeds, none ever finishes the body."""
        for offset in range(len(response.body)):
            self.wfile.write(response.body[offset : offset + 1])
            self.wfile.flush()
            time.sleep(response.trickle_seconds)


class FakeVkServer(FakeVk):
    """A fake VK on `127.0.0.1` speaking API 5.199 over HTTP; use as a context manager::

    with FakeVkServer() as vk:
        vk.add_group(1, "poteryashki", "Потеряшки")
        vk.add_post(1, text="Пропала собака", photos=[jpeg_bytes])
        settings = VkSettings(api_url=vk.api_url, token=vk.token, photo_hosts=("127.0.0.1",))
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, **kwargs: Any):
        super().__init__(**kwargs)
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.api_url = ""

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake VK server is not running")
        return int(self._server.server_address[1])

    def start(self) -> FakeVkServer:
        """Bind and serve in a daemon thread; sets `api_url` and `photo_base_url`."""
        if self._server is not None:
            return self
        server = _Server((self._host, self._port), _Handler)
        server.fake = self
        self._server = server
        base = f"http://{self._host}:{self.port}"
        self.api_url = f"{base}/method/"
        self.photo_base_url = f"{base}/photos/"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (for `petmatch fake-vk`)."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def __enter__(self) -> FakeVkServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
