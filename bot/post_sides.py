"""Which side a post is on, and which sides it is matched against.

The text stage reads `lost`, `found` or `unknown` (an animal is described but the text does
not say which side). A group may declare what it publishes (`petmatch groups add … --kind`):
its side decides for an `unknown` post; in a mixed group the post stays `unknown`, is indexed
and matched against both sides, and its matches carry the uncertainty in their reasons.
"""

from __future__ import annotations

# The kinds of posts the pipeline indexes, each with the kinds of posts it is matched against.
SEARCH_KINDS: dict[str, tuple[str, ...]] = {
    "lost": ("found", "unknown"),
    "found": ("lost", "unknown"),
    "unknown": ("lost", "found"),
}


def side_with_group(text_kind: str, group_kind: str | None) -> tuple[str, str | None]:
    """The post's kind once the group's declared side is applied, and a note saying so.

    Only an `unknown` post takes the group's side: a post whose text says lost or found, or
    that is about something else, keeps what its text says.
    """
    if text_kind == "unknown" and group_kind in {"lost", "found"}:
        return group_kind, (
            f"the text does not say lost or found; the group publishes {group_kind} posts"
        )
    return text_kind, None
