"""Resolving communities and commenting through `VkApiGateway` against the fake VK."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.fakevk import FakeVkServer
from bot.vk._refs import parse_group_ref
from bot.vk.errors import (
    CommentRejectedError,
    GroupNotFoundError,
    LinkRejectedError,
    TransientVkError,
)
from bot.vk.gateway import VkApiGateway


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("https://vk.com/poteryashki_msk", "poteryashki_msk"),
        ("http://m.vk.com/poteryashki_msk/", "poteryashki_msk"),
        ("https://vk.ru/poteryashki_msk?w=wall-1_2", "poteryashki_msk"),
        ("vk.com/club123", 123),
        ("public123", 123),
        ("club123", 123),
        ("-123", 123),
        ("123", 123),
        ("  poteryashki_msk ", "poteryashki_msk"),
    ],
)
def test_group_refs_parse(ref: str, expected: int | str) -> None:
    assert parse_group_ref(ref) == expected


@pytest.mark.parametrize(
    "ref",
    ["", "https://example.com/poteryashki", "https://vk.com/", "vk.com/a/b", "две слова", "0"],
)
def test_bad_group_refs_are_one_line_value_errors(ref: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_group_ref(ref)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "ref", ["https://vk.com/poteryashki_msk", "poteryashki_msk", "club77", "public77", "-77", "77"]
)
def test_resolve_group(fake_vk: FakeVkServer, gateway: VkApiGateway, ref: str) -> None:
    fake_vk.add_group(77, "poteryashki_msk", "Потеряшки Москва")
    group = gateway.resolve_group(ref)
    assert (group.id, group.screen_name, group.name) == (77, "poteryashki_msk", "Потеряшки Москва")


def test_resolve_reports_closed_and_deactivated(
    fake_vk: FakeVkServer, gateway: VkApiGateway
) -> None:
    fake_vk.add_group(5, "closed", "Закрытая", is_closed=1)
    fake_vk.add_group(6, "banned", "Забаненная", deactivated="banned")
    assert gateway.resolve_group("closed").is_closed == 1
    assert gateway.resolve_group("club6").deactivated == "banned"


@pytest.mark.parametrize("ref", ["no_such_group", "club999", "id42"])
def test_unknown_groups_are_not_found(
    fake_vk: FakeVkServer, gateway: VkApiGateway, ref: str
) -> None:
    with pytest.raises(GroupNotFoundError):
        gateway.resolve_group(ref)


@pytest.fixture
def post(fake_vk: FakeVkServer) -> tuple[int, int]:
    fake_vk.add_group(3, "a", "A", links_allowed=False)
    return -3, fake_vk.add_post(3, text="Найдена собака")


def test_guid_makes_create_comment_idempotent(
    fake_vk: FakeVkServer, gateway: VkApiGateway, post: tuple[int, int]
) -> None:
    first = gateway.create_comment(*post, "Возможно, это ваш питомец", guid="match-1")
    again = gateway.create_comment(*post, "Возможно, это ваш питомец", guid="match-1")
    other = gateway.create_comment(*post, "Другое совпадение", guid="match-2")
    assert first == again != other
    assert [c["guid"] for c in fake_vk.comments] == ["match-1", "match-2"]
    assert [c.text for c in gateway.get_comments(*post)] == [
        "Возможно, это ваш питомец",
        "Другое совпадение",
    ]


def test_retried_create_comment_posts_once(
    fake_vk: FakeVkServer, gateway: VkApiGateway, post: tuple[int, int]
) -> None:
    fake_vk.inject_fault("wall.createComment", 10, times=1)
    gateway.create_comment(*post, "Похоже на вашего кота", guid="retry-1")
    assert len(fake_vk.comments) == 1
    assert fake_vk.calls["wall.createComment"] == 2


def test_comment_refusals(
    fake_vk: FakeVkServer, gateway: VkApiGateway, post: tuple[int, int]
) -> None:
    with pytest.raises(LinkRejectedError):
        gateway.create_comment(*post, "Смотрите https://vk.com/wall-1_2", guid="l")
    closed = fake_vk.add_post(3, text="без комментариев", can_comment=False)
    assert not gateway.fetch_wall(-3).posts[0].can_comment
    with pytest.raises(CommentRejectedError):
        gateway.create_comment(-3, closed, "Привет", guid="c")
    assert fake_vk.comments == []


def test_get_comments_reads_other_peoples_comments(
    fake_vk: FakeVkServer, gateway: VkApiGateway, post: tuple[int, int]
) -> None:
    fake_vk.add_comment(3, post[1], "Видели его вчера", from_id=555)
    comments = gateway.get_comments(*post)
    assert [(c.from_id, c.text) for c in comments] == [(555, "Видели его вчера")]
    fake_vk.inject_fault("wall.getComments", "http500", times=None)
    with pytest.raises(TransientVkError):
        gateway.get_comments(*post)


@given(st.text(max_size=80))
def test_group_ref_parsing_is_total(ref: str) -> None:
    try:
        parsed = parse_group_ref(ref)
    except ValueError as exc:
        assert "\n" not in str(exc)
        return
    assert (isinstance(parsed, int) and parsed > 0) or (
        isinstance(parsed, str) and parsed.replace("_", "").replace(".", "").isalnum()
    )
