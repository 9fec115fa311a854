"""The fake VK server and the real gateway talk end to end over loopback HTTP."""

from __future__ import annotations

from bot.fakevk import FakeVkServer, seed_demo
from bot.vk.gateway import VkApiGateway
from bot.vk.models import WallRequest


def test_demo_world_round_trip(fake_vk: FakeVkServer, gateway: VkApiGateway) -> None:
    seed_demo(fake_vk, now=1_700_000_000)
    group = gateway.resolve_group("https://vk.com/poteryashki_demo_msk")
    assert group.id == 1001
    pages = gateway.fetch_walls([WallRequest(owner_id=-1001), WallRequest(owner_id=-1003)])
    page = pages[-1001]
    assert not isinstance(page, Exception)
    assert page.posts[0].is_pinned
    lost = page.posts[-1]
    assert lost.text.startswith("ПРОПАЛ кот")
    data = gateway.download_photo(lost.photos[0].url)
    assert data[:3] == b"\xff\xd8\xff"
    assert isinstance(pages[-1003], Exception)
