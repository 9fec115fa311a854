"""Parse what an admin types to name a VK community."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_VK_HOSTS = {"vk.com", "m.vk.com", "www.vk.com", "vk.ru", "m.vk.ru", "www.vk.ru"}
_NUMERIC_PREFIX = re.compile(r"^(?:club|public|event)(\d+)$")
_SCREEN_NAME = re.compile(r"^[A-Za-z0-9_.]{2,64}$")


def parse_group_ref(ref: str) -> int | str:
    """`https://vk.com/name`, `vk.com/club123`, `public123`, `club123`, `-123`, `123`, `name`
    → a positive group id (int) or a screen name (str). Raises ValueError with one line."""
    text = ref.strip()
    if not text:
        raise ValueError("empty group reference: give a VK URL, a screen name or a numeric id")
    candidate = text
    looks_like_url = "/" in text or text.lower().startswith(("http:", "https:"))
    if looks_like_url:
        parts = urlsplit(text if "://" in text else f"https://{text}")
        host = (parts.hostname or "").lower()
        if host not in _VK_HOSTS:
            raise ValueError(f"not a VK community URL: {ref!r} (expected https://vk.com/<name>)")
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) != 1:
            raise ValueError(f"not a VK community URL: {ref!r} (expected https://vk.com/<name>)")
        candidate = segments[0]
    if re.fullmatch(r"-?\d+", candidate):
        return _group_id(candidate.lstrip("-"), ref)
    numeric = _NUMERIC_PREFIX.match(candidate.lower())
    if numeric:
        return _group_id(numeric.group(1), ref)
    if _SCREEN_NAME.match(candidate):
        return candidate
    raise ValueError(f"not a VK community reference: {ref!r}")


#: VK ids are stored in 64-bit columns; anything longer is no community.
_MAX_DIGITS = 19


def _group_id(digits: str, ref: str) -> int:
    group_id = int(digits) if len(digits) <= _MAX_DIGITS else 0
    if not 0 < group_id < 2**63:
        raise ValueError(f"not a VK community id: {ref[:80]!r}")
    return group_id
