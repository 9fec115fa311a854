"""Configuration errors as one line that names the key and never shows the value.

pydantic's own message quotes the offending input, so a misspelt variable that holds the VK
token (`PETMATCH_VK__ACCESS_TOKEN=...`) would print the token; this one never does.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

__all__ = ["describe_config_error", "describe_yaml_error", "unknown_variables"]

_ENV_PREFIX = "PETMATCH_"
#: Shorter inputs are not secrets, and blanking them would mangle the message.
_MIN_SCRUBBED = 4


def describe_config_error(exc: ValidationError) -> str:
    """One line for a settings validation failure: which key, what is wrong, no value."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    line = f"configuration error: {_describe(first)}"
    if len(errors) > 1:
        line += (
            f" (and {len(errors) - 1} more: "
            + ", ".join(_key(e["loc"])[0] for e in errors[1:4])
            + (", …" if len(errors) > 4 else "")
            + ")"
        )
    return line


def _describe(error: Any) -> str:
    key, env = _key(error["loc"])
    where = f"{key} (environment variable {env}, or `{key}` in the config file)"
    if error["type"] == "extra_forbidden":
        return f"unknown setting {where}: check its spelling; its value is not shown"
    message = _scrub(str(error.get("msg", "invalid value")), error.get("input"))
    return f"bad value for {where}: {message}; the value is not shown"


def _key(loc: tuple[Any, ...]) -> tuple[str, str]:
    """(`vk.access_token`, `PETMATCH_VK__ACCESS_TOKEN`) for a pydantic error location."""
    names = [str(part) for part in loc if not isinstance(part, int)] or ["settings"]
    return ".".join(names), _ENV_PREFIX + "__".join(n.upper() for n in names)


def _scrub(message: str, value: Any) -> str:
    """Blank the input wherever a message quotes it (custom validators may)."""
    candidates = [value] if not isinstance(value, dict | list | tuple) else []
    if isinstance(value, dict):
        candidates = list(value.values())
    for candidate in candidates:
        text = str(candidate)
        if len(text) >= _MIN_SCRUBBED and text in message:
            message = message.replace(text, "***")
    return message.splitlines()[0] if message else "invalid value"


def describe_yaml_error(exc: Exception) -> str:
    """Where the config file stops being YAML (the line, not its text: it may hold a secret)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    name = getattr(mark, "name", None) or "the config file"
    return f"{name} is not valid YAML{where}; its text is not shown"


#: `PETMATCH_*` variables read outside the settings object.
_NOT_SETTINGS = ("PETMATCH_CONFIG",)
_OTHER_PREFIXES = ("PETMATCH_TEST_",)


def unknown_variables(environ: dict[str, str], fields: set[str]) -> list[str]:
    """`PETMATCH_*` variables that name no top-level setting: pydantic ignores those silently,
    so `PETMATCH_VK_TOKEN` (one underscore) would leave the bot without its token. Each
    comes with a hint (never the value)."""
    hints = []
    for name in sorted(environ):
        if not name.startswith(_ENV_PREFIX) or name in _NOT_SETTINGS:
            continue
        if name.startswith(_OTHER_PREFIXES):
            continue
        head = name[len(_ENV_PREFIX) :].split("__", 1)[0].lower()
        if head in fields:
            continue
        section, _, rest = head.partition("_")
        guess = f"{_ENV_PREFIX}{section.upper()}__{rest.upper()}" if rest else ""
        hint = f"; did you mean {guess}?" if section in fields and rest else ""
        hints.append(f"{name} is not a petmatch setting and is ignored{hint}")
    return hints
