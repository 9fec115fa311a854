"""The review desk (`petmatch web`): a server-rendered web application where volunteers
confirm or reject the candidate pairs the bot is unsure about, search by photo and (admins)
run the groups. An application package beside `bot/cli`; the core packages know nothing of it.
"""

from bot.web.app import create_app

__all__ = ["create_app"]
