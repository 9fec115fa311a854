"""Pytest fixtures for the fake VK server; import them into a conftest:

from tests.bot.fakevk_fixtures import fake_vk, gateway, vk_settings  # noqa: F401
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from bot.config import VkSettings
from bot.fakevk import FakeVkServer
from bot.vk.gateway import VkApiGateway

__all__ = ["fake_vk", "gateway", "jpeg_bytes", "make_vk_settings", "open_gateway", "vk_settings"]

#: Client timeout in tests; the fake's "timeout" fault hangs longer than this.
TEST_TIMEOUT_SECONDS = 1.0  # generous: a loaded 2-core CI machine can stall a call 0.5 s


def make_vk_settings(server: FakeVkServer, **overrides: object) -> VkSettings:
    """VkSettings pointed at `server`, with fast timeouts and backoff."""
    values: dict[str, object] = {
        "api_url": server.api_url,
        "token": SecretStr(server.token),
        "rate_limit_per_second": 1000.0,
        "max_retries": 3,
        "backoff_base_seconds": 0.001,
        "backoff_max_seconds": 0.01,
        "request_timeout_seconds": TEST_TIMEOUT_SECONDS,
        "photo_timeout_seconds": TEST_TIMEOUT_SECONDS,
        "photo_hosts": ("127.0.0.1",),
        "max_photo_bytes": 2 * 1024 * 1024,
    }
    values.update(overrides)
    return VkSettings(**values)  # type: ignore[arg-type]


def jpeg_bytes(
    width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 120, 40)
) -> bytes:
    """A small real JPEG for posts in the fake VK."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="JPEG")
    return out.getvalue()


@pytest.fixture
def fake_vk() -> Iterator[FakeVkServer]:
    """A running fake VK on 127.0.0.1 (empty: add groups and posts in the test)."""
    with FakeVkServer(
        hang_seconds=TEST_TIMEOUT_SECONDS * 3, slow_seconds=0.05, huge_bytes=8 * 1024 * 1024
    ) as server:
        yield server


@pytest.fixture
def vk_settings(fake_vk: FakeVkServer) -> VkSettings:
    """VkSettings pointed at `fake_vk`, photo_hosts=("127.0.0.1",), fast timeouts/backoff."""
    return make_vk_settings(fake_vk)


@contextmanager
def open_gateway(settings: VkSettings, **kwargs: Any) -> Iterator[VkApiGateway]:
    """A `VkApiGateway` on a session that ignores environment proxies (loopback only);
    `kwargs` go to the constructor (`sleep`, `clock`, `rng`, `today`, `session`)."""
    session = kwargs.pop("session", None) or requests.Session()
    session.trust_env = False
    with session, VkApiGateway(settings, session=session, **kwargs) as gw:
        yield gw


@pytest.fixture
def gateway(vk_settings: VkSettings) -> Iterator[VkApiGateway]:
    """A real `VkApiGateway` talking to `fake_vk` over HTTP (no environment proxies)."""
    with open_gateway(vk_settings) as gw:
        yield gw
