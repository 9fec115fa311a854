"""Error policy of `VkApiGateway` against the fake VK over HTTP: translation, retries,
rate limiting, captchas and token hygiene."""

from __future__ import annotations

import logging
import random
import traceback
from datetime import date

import pytest
import requests
import vk_api

from bot.config import VkSettings
from bot.fakevk import FakeVkServer
from bot.vk.errors import (
    CaptchaError,
    CommentRejectedError,
    GroupAccessError,
    LinkRejectedError,
    MalformedResponseError,
    MethodPausedError,
    TokenError,
    TransientVkError,
    VkBugError,
    VkError,
)
from bot.vk.gateway import VkApiGateway
from tests.bot.fakevk_fixtures import make_vk_settings, open_gateway

GROUP = 10


class FakeClock:
    """A monotonic clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class StampingSession(requests.Session):
    """Records the fake clock each time a request actually goes out."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.trust_env = False
        self.clock = clock
        self.stamps: list[float] = []

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def, override]
        self.stamps.append(self.clock.now)
        return super().send(request, **kwargs)


@pytest.fixture
def wall(fake_vk: FakeVkServer) -> FakeVkServer:
    fake_vk.add_group(GROUP, "poteryashki", "Потеряшки")
    fake_vk.add_post(GROUP, text="Пропала кошка", date=1_700_000_000)
    return fake_vk


POLICY = [
    (5, TokenError),
    (17, TokenError),
    (27, TokenError),
    (9, CaptchaError),
    (14, CaptchaError),
    (15, GroupAccessError),
    (18, GroupAccessError),
    (19, GroupAccessError),
    (30, GroupAccessError),
    (203, GroupAccessError),
    (29, MethodPausedError),
    (100, VkBugError),
    (113, VkBugError),
    (212, CommentRejectedError),
    (213, CommentRejectedError),
    (223, CommentRejectedError),
    (222, LinkRejectedError),
    (777, VkError),
]


@pytest.mark.parametrize(("code", "expected"), POLICY)
def test_each_error_code_maps_to_its_error_without_retry(
    wall: FakeVkServer, gateway: VkApiGateway, code: int, expected: type[VkError]
) -> None:
    wall.inject_fault("wall.get", code)
    with pytest.raises(VkError) as caught:
        gateway.fetch_wall(-GROUP)
    assert type(caught.value) is expected
    assert caught.value.code == code
    assert caught.value.method == "wall.get"
    assert isinstance(caught.value.__cause__, vk_api.VkApiError)
    assert wall.calls["wall.get"] == 1


def test_comment_errors_map_on_create_comment(wall: FakeVkServer, gateway: VkApiGateway) -> None:
    wall.inject_fault("wall.createComment", 222)
    with pytest.raises(LinkRejectedError):
        gateway.create_comment(-GROUP, 1, "см. https://example.com", guid="g1")
    wall.inject_fault("wall.createComment", 223)
    with pytest.raises(CommentRejectedError):
        gateway.create_comment(-GROUP, 1, "Привет", guid="g2")
    assert wall.comments == []


def test_wrong_token_is_a_token_error(wall: FakeVkServer) -> None:
    settings = make_vk_settings(wall, token="not-the-token")
    with open_gateway(settings) as gw:
        with pytest.raises(TokenError) as caught:
            gw.fetch_wall(-GROUP)
        assert caught.value.code == 5


@pytest.mark.parametrize("fault", [1, 6, 10, "http500", "http502", "timeout"])
def test_transient_failures_are_retried_and_then_succeed(
    wall: FakeVkServer, gateway: VkApiGateway, fault: int | str
) -> None:
    wall.inject_fault("wall.get", fault, times=2)
    page = gateway.fetch_wall(-GROUP)
    assert [p.text for p in page.posts] == ["Пропала кошка"]
    assert wall.calls["wall.get"] == 3
    assert gateway.calls_today["wall.get"] == 3


@pytest.mark.parametrize("fault", [6, "http502", "timeout"])
def test_transient_failures_forever_give_up_after_max_retries(
    wall: FakeVkServer, fault: int | str
) -> None:
    settings = make_vk_settings(wall, max_retries=2)
    wall.inject_fault("wall.get", fault, times=None)
    with (
        open_gateway(settings) as gw,
        pytest.raises(TransientVkError, match="gave up after 3 attempts"),
    ):
        gw.fetch_wall(-GROUP)
    assert wall.calls["wall.get"] == 3


def test_backoff_grows_exponentially_with_bounded_jitter(wall: FakeVkServer) -> None:
    clock = FakeClock()
    settings = make_vk_settings(
        wall, max_retries=4, backoff_base_seconds=0.1, backoff_max_seconds=0.5
    )
    wall.inject_fault("wall.get", 10, times=None)
    gw = open_gateway(settings, sleep=clock.sleep, clock=clock.monotonic, rng=random.Random(1))
    with gw as gateway, pytest.raises(TransientVkError):
        gateway.fetch_wall(-GROUP)
    backoffs = [s for s in clock.sleeps if s >= 0.05 - 1e-9]
    assert len(backoffs) == 4
    for attempt, delay in enumerate(backoffs):
        ceiling = min(0.5, 0.1 * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert wall.calls["wall.get"] == 5


def test_rate_limit_spaces_requests(wall: FakeVkServer) -> None:
    clock = FakeClock()
    session = StampingSession(clock)
    settings = make_vk_settings(wall, rate_limit_per_second=3.0)
    with open_gateway(settings, session=session, sleep=clock.sleep, clock=clock.monotonic) as gw:
        for _ in range(7):
            gw.fetch_wall(-GROUP)
    assert len(session.stamps) == 7
    gaps = [b - a for a, b in zip(session.stamps, session.stamps[1:], strict=False)]
    assert all(gap >= 1 / 3 - 1e-9 for gap in gaps)
    # No over-sleeping either: seven requests fit in two seconds.
    assert clock.now == pytest.approx(2.0)


def test_captcha_is_never_solved(wall: FakeVkServer, gateway: VkApiGateway) -> None:
    wall.inject_fault("wall.createComment", 14, times=None)
    with pytest.raises(CaptchaError) as caught:
        gateway.create_comment(-GROUP, 1, "Привет", guid="g")
    assert caught.value.code == 14
    assert wall.calls["wall.createComment"] == 1
    assert all("captcha_key" not in params for _, params in wall.call_log)
    assert wall.comments == []


@pytest.mark.parametrize("fault", ["not_json", "truncated"])
def test_malformed_bodies_are_malformed_response_errors(
    wall: FakeVkServer, gateway: VkApiGateway, fault: str
) -> None:
    wall.inject_fault("wall.get", fault)
    with pytest.raises(MalformedResponseError):
        gateway.fetch_wall(-GROUP)


@pytest.mark.parametrize("fault", [5, 14, 15, 6, "http500", "not_json"])
def test_token_never_appears_in_errors_or_logs(
    wall: FakeVkServer, caplog: pytest.LogCaptureFixture, fault: int | str
) -> None:
    caplog.set_level(logging.DEBUG)
    token = wall.token
    settings = make_vk_settings(wall, max_retries=2)
    wall.inject_fault("wall.get", fault, times=None)
    with open_gateway(settings) as gw:
        assert token not in repr(gw)
        with pytest.raises(VkError) as caught:
            gw.fetch_wall(-GROUP)
        error = caught.value
        rendered = "".join(traceback.format_exception(error))
        assert token not in rendered
        assert token not in repr(error)
        cause = error.__cause__
        assert cause is not None
        assert token not in repr(cause)
        assert token not in str(getattr(cause, "values", ""))
        assert token not in str(getattr(cause, "error", ""))
    assert token not in caplog.text
    if fault == 6:
        assert "retry" in caplog.text


def test_calls_today_counts_by_method_and_starts_over_each_day(wall: FakeVkServer) -> None:
    days = iter([date(2024, 5, 1)] * 3 + [date(2024, 5, 2)] * 10)
    with open_gateway(make_vk_settings(wall), today=lambda: next(days)) as gw:
        gw.fetch_wall(-GROUP)
        gw.fetch_wall(-GROUP)
        assert gw.calls_today == {"wall.get": 2}
        gw.resolve_group("club10")
        assert gw.calls_today == {"groups.getById": 1}
        assert gw.calls_day == date(2024, 5, 2)


def test_gateway_without_token_refuses_to_start() -> None:
    with pytest.raises(TokenError, match="PETMATCH_VK__TOKEN"):
        VkApiGateway(VkSettings(token=None))
