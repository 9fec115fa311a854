"""A fake VK API server on loopback, for tests and manual runs (`petmatch fake-vk`).

It speaks enough of API 5.199 for petmatch (wall.get, execute with the gateway's wall.get
batch or its comment-paging script, groups.getById, utils.resolveScreenName, wall.getComments,
wall.createComment, users.get) and serves photos, with VK's exact JSON shapes and error
envelope, plus injectable faults: error codes (also per wall inside `execute`), transport
failures, a body trickled one byte at a time (`"trickle"`), and malformed items inside a
valid answer (`mutate_item`).
"""

from bot.fakevk._demo import seed_demo
from bot.fakevk._server import FakeVkServer
from bot.fakevk._state import DEFAULT_TOKEN, ERROR_MESSAGES, OFFSITE_PHOTO_URL, FakeVk, Fault

__all__ = [
    "DEFAULT_TOKEN",
    "ERROR_MESSAGES",
    "OFFSITE_PHOTO_URL",
    "FakeVk",
    "FakeVkServer",
    "Fault",
    "seed_demo",
]
