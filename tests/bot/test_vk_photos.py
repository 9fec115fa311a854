"""Photo downloads through `VkApiGateway` from the fake VK's photo host."""

from __future__ import annotations

import pytest

from bot.fakevk import FakeVkServer
from bot.vk._photo import check_image, host_allowed
from bot.vk.errors import PhotoDownloadError
from bot.vk.gateway import VkApiGateway
from tests.bot.fakevk_fixtures import jpeg_bytes, make_vk_settings, open_gateway


@pytest.fixture
def photo_url(fake_vk: FakeVkServer) -> str:
    fake_vk.add_group(1, "a", "A")
    post = fake_vk.add_post(1, text="Найден кот", photos=[jpeg_bytes(200, 150)])
    return fake_vk.photo_urls(1, post)[0]


def _reason(gateway: VkApiGateway, url: str) -> str:
    with pytest.raises(PhotoDownloadError) as caught:
        gateway.download_photo(url)
    assert caught.value.url == url
    return caught.value.reason


def test_download_returns_the_posted_bytes(
    fake_vk: FakeVkServer, gateway: VkApiGateway, photo_url: str
) -> None:
    data = gateway.download_photo(photo_url)
    assert check_image(data, max_pixels=10**6) == (200, 150)


def test_off_allowlist_host_is_refused_without_a_request(
    fake_vk: FakeVkServer, gateway: VkApiGateway, photo_url: str
) -> None:
    assert _reason(gateway, "https://evil.example.com/cat.jpg") == "not_allowed_host"
    assert _reason(gateway, "ftp://127.0.0.1/cat.jpg") == "bad_url"
    assert fake_vk.calls["photo"] == 0


def test_redirect_off_the_allowlist_is_refused(
    fake_vk: FakeVkServer, gateway: VkApiGateway, photo_url: str
) -> None:
    fake_vk.inject_fault("photo", "redirect")
    assert _reason(gateway, photo_url) == "not_allowed_host"


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("sun9-76.userapi.com", True),
        ("userapi.com", True),
        ("USERAPI.COM.", True),
        ("eviluserapi.com", False),
        ("userapi.com.evil.net", False),
        ("vk.com", True),
        ("vk.company", False),
    ],
)
def test_host_allowlist_is_a_suffix_match_on_labels(host: str, allowed: bool) -> None:
    assert host_allowed(host, ("userapi.com", "vk.com")) is allowed


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("404", "http_404"), ("not_image", "not_image"), ("huge", "too_large")],
)
def test_bad_photo_answers(
    fake_vk: FakeVkServer, gateway: VkApiGateway, photo_url: str, fault: str, reason: str
) -> None:
    fake_vk.inject_fault(photo_url, fault)
    assert _reason(gateway, photo_url) == reason


def test_declared_size_over_the_cap_is_refused(fake_vk: FakeVkServer, photo_url: str) -> None:
    big = fake_vk.add_post(1, text="большое фото", photos=[jpeg_bytes(1200, 900)])
    settings = make_vk_settings(fake_vk, max_photo_bytes=2000)
    with open_gateway(settings) as gateway:
        assert _reason(gateway, fake_vk.photo_urls(1, big)[0]) == "too_large"


def test_unknown_photo_is_404(fake_vk: FakeVkServer, gateway: VkApiGateway) -> None:
    assert _reason(gateway, f"{fake_vk.photo_base_url}-1_42.jpg") == "http_404"


def test_photo_timeouts_are_retried_then_reported(fake_vk: FakeVkServer, photo_url: str) -> None:
    settings = make_vk_settings(fake_vk, max_retries=1)
    with open_gateway(settings) as gateway:
        fake_vk.inject_fault("photo", "timeout", times=1)
        assert gateway.download_photo(photo_url)[:3] == b"\xff\xd8\xff"
        fake_vk.inject_fault("photo", "timeout", times=None)
        assert _reason(gateway, photo_url) == "timeout"
    assert fake_vk.calls["photo"] == 4


def test_corrupt_photo_downloads_but_fails_the_decode_check(
    fake_vk: FakeVkServer, gateway: VkApiGateway, photo_url: str
) -> None:
    fake_vk.inject_fault("photo", "corrupt")
    data = gateway.download_photo(photo_url)
    with pytest.raises(PhotoDownloadError) as caught:
        check_image(data, max_pixels=10**7)
    assert caught.value.reason == "corrupt"


def test_check_image_refuses_too_many_pixels() -> None:
    with pytest.raises(PhotoDownloadError) as caught:
        check_image(jpeg_bytes(400, 300), max_pixels=100_000)
    assert caught.value.reason == "too_many_pixels"
    with pytest.raises(PhotoDownloadError) as caught:
        check_image(b"<html></html>", max_pixels=100_000)
    assert caught.value.reason == "not_image"
