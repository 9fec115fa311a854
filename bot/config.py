"""Configuration: `configs/default.yaml` overlaid by `PETMATCH_*` environment variables.

Built once by the CLI and passed down; there is no module-level settings object.
Nested keys use `__` in the environment: `PETMATCH_VK__RATE_LIMIT_PER_SECOND=2`.
VK credentials are read only from the environment (`PETMATCH_VK__TOKEN`, `…__READ_TOKEN`,
`…__COMMENT_TOKEN`) or the files their `…_FILE` variants name, and only when a command needs
them (`bot.vk.credentials`); they are `SecretStr`s, so they never print.

Working data lives under one data root, `PETMATCH_HOME` (`home`): the database file, models,
photos, crops and index. Its default does not depend on the current folder (see
`default_home`); relative data paths (`var_dir`, `photos_dir`, `models_dir`, `index_dir`, a
relative SQLite file) are resolved against it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

PACKAGE_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VkSettings(_Section):
    api_url: str = "https://api.vk.ru/method/"
    api_version: str = "5.199"
    token: SecretStr | None = None
    token_file: Path | None = None
    # Split roles (issue 15): the app's service key reads, a user token of an admin of the
    # bot's community comments as that community (`from_group`).
    read_token: SecretStr | None = None
    read_token_file: Path | None = None
    comment_token: SecretStr | None = None
    comment_token_file: Path | None = None
    bot_group_id: int | None = Field(None, ge=1)
    rate_limit_per_second: float = Field(3.0, gt=0)
    max_retries: int = Field(4, ge=0)
    backoff_base_seconds: float = Field(0.5, ge=0)
    backoff_max_seconds: float = Field(30.0, ge=0)
    request_timeout_seconds: float = Field(20.0, gt=0)
    daily_wall_get_quota: int = Field(5000, gt=0)
    walls_per_execute: int = Field(25, ge=1, le=25)
    captcha_pause_hours: float = Field(6.0, ge=0)
    method_pause_hours: float = Field(24.0, ge=0)
    inaccessible_recheck_hours: float = Field(24.0, ge=0)
    photo_hosts: tuple[str, ...] = (
        "userapi.com",
        "vk.com",
        "vk.me",
        "vkuserphoto.ru",
        "vk-cdn.net",
    )
    max_photo_bytes: int = Field(15 * 1024 * 1024, gt=0)
    max_photo_pixels: int = Field(40_000_000, gt=0)
    photo_timeout_seconds: float = Field(20.0, gt=0)
    # Overall limits, send to last byte: per-read timeouts never end a trickling answer.
    call_deadline_seconds: float = Field(60.0, gt=0)
    photo_deadline_seconds: float = Field(60.0, gt=0)


class PollingSettings(_Section):
    interval_minutes: float = Field(15.0, gt=0)
    page_size: int = Field(100, ge=1, le=100)
    max_pages: int = Field(10, ge=1)
    edited_window_hours: float = Field(48.0, ge=0)
    reindex_cron: str = "30 4 * * *"
    process_interval_seconds: float = Field(30.0, gt=0)
    process_batch: int = Field(200, ge=1)


class SegmentationSettings(_Section):
    backend: str = "u2netp"
    min_crop_pixels: int = Field(48 * 48, ge=1)
    pointrend_weights: Path | None = None
    # Run the int8 U²-Net-p that `petmatch models prepare --quantize` writes.
    quantized: bool = False


class ReidSettings(_Section):
    model: str = "efficientnet_lite1"
    weights: Path | None = None
    batch_size: int = Field(16, ge=1)
    # Run the int8 copy of the embedder (`models prepare --quantize`); its vectors have their
    # own model id, so it needs its own calibration (scripts/calibrate.py) and index.
    quantized: bool = False


class MatchingSettings(_Section):
    target_precision: float = Field(0.98, gt=0, le=1)
    threshold: float | None = Field(None, ge=0, le=1)
    margin: float = Field(0.05, ge=0, le=1)
    time_window_days: float = Field(60.0, gt=0)
    reverse_gap_days: float = Field(2.0, ge=0)
    max_distance_km: float = Field(50.0, gt=0)
    top_k: int = Field(20, ge=1)
    # Candidates from this calibrated confidence up to the comment threshold go to the review
    # desk (`petmatch web`) for a person to decide.
    review_threshold: float = Field(0.12, ge=0, le=1)


class CommentingSettings(_Section):
    dry_run: bool = False
    daily_cap: int = Field(30, ge=0)
    min_gap_seconds: float = Field(120.0, ge=0)
    quiet_hours: tuple[int, int] | None = (23, 8)
    timezone: str = "Europe/Moscow"
    template_file: Path = Path("configs/comment_templates.yaml")
    # One automatic comment in this many also goes to the review desk, to be judged after
    # the fact: the precision of automatic comments is computed from that sample.
    review_sample_every: int = Field(5, ge=1)


class WebSettings(_Section):
    """The review desk (`petmatch web`)."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    # Signs the session cookies; generated into var_dir on first start when not given.
    secret_key_file: Path | None = None
    secure_cookies: bool = False  # set true behind HTTPS
    session_hours: float = Field(12.0, gt=0)
    login_failures_allowed: int = Field(5, ge=1)
    login_lockout_seconds: float = Field(60.0, ge=0)
    queue_page_size: int = Field(50, ge=1, le=500)


class ProcessingSettings(_Section):
    """A post whose photos could not be looked at (a local I/O error, not "no animal") is
    tried again with exponential backoff, then marked `failed` with the reason."""

    max_attempts: int = Field(5, ge=1)
    retry_base_minutes: float = Field(5.0, gt=0)
    retry_max_minutes: float = Field(360.0, gt=0)


class IndexSettings(_Section):
    # Exact scans up to this many vectors per partition (p50 <= 10 ms at 1280-d), IVF above.
    exact_limit: int = Field(50_000, ge=1)
    # recall@10 of IVF partitions against exact search, reached when nprobe is tuned.
    target_recall: float = Field(0.98, gt=0, le=1)


class WorkersSettings(_Section):
    # True: `petmatch run` leaves the vision stage (photo download, segmentation, embedding)
    # to `petmatch worker` processes (PostgreSQL).
    enabled: bool = False
    # Where photos and crops go: `local` (under var_dir) or `database` (every machine reads
    # them; use it when workers run on other machines).
    files: Literal["local", "database"] = "local"
    # How long an idle worker waits before looking for work again.
    poll_seconds: float = Field(2.0, gt=0)


class Settings(BaseSettings):
    """Everything petmatch reads from the outside world, in one object."""

    model_config = SettingsConfigDict(
        env_prefix="PETMATCH_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    # The data root; None: `default_home()`. Every data path below defaults to a place in it.
    home: Path | None = None
    # None: a SQLite file `petmatch.db` in var_dir.
    database_url: str | None = None
    # None: the data root itself.
    var_dir: Path | None = None
    log_level: str = "INFO"
    vk: VkSettings = VkSettings()
    polling: PollingSettings = PollingSettings()
    segmentation: SegmentationSettings = SegmentationSettings()
    reid: ReidSettings = ReidSettings()
    matching: MatchingSettings = MatchingSettings()
    commenting: CommentingSettings = CommentingSettings()
    processing: ProcessingSettings = ProcessingSettings()
    web: WebSettings = WebSettings()
    index: IndexSettings = IndexSettings()
    workers: WorkersSettings = WorkersSettings()

    # Default to folders under var_dir; each can be pointed elsewhere (e.g. models baked into
    # a Docker image while photos and the index live on a volume).
    photos_dir: Path | None = None
    models_dir: Path | None = None
    index_dir: Path | None = None

    @model_validator(mode="after")
    def _default_dirs(self) -> Settings:
        home = Path(self.home if self.home is not None else default_home())
        home = home.expanduser().absolute()
        object.__setattr__(self, "home", home)
        var_dir = home if self.var_dir is None else _under(home, self.var_dir)
        object.__setattr__(self, "var_dir", var_dir)
        for name in ("photos", "models", "index"):
            value = getattr(self, f"{name}_dir")
            folder = var_dir / name if value is None else _under(home, value)
            object.__setattr__(self, f"{name}_dir", folder)
        url = self.database_url or f"sqlite:///{var_dir / 'petmatch.db'}"
        object.__setattr__(self, "database_url", _sqlite_under(home, url))
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_file = _config_file()
        return (
            init_settings,
            env_settings,
            file_secret_settings,
            YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file),
        )


def _config_file() -> Path | None:
    import os

    explicit = os.environ.get("PETMATCH_CONFIG")
    if explicit:
        return Path(explicit)
    return PACKAGE_CONFIG if PACKAGE_CONFIG.exists() else None


def default_home() -> Path:
    """The data root when `PETMATCH_HOME` is not set: `var/` of the source checkout petmatch
    runs from (where `scripts/setup.sh` migrates the database and exports the models), else
    the user's data directory (`$XDG_DATA_HOME/petmatch`, `~/.local/share/petmatch`). Never
    the current folder."""
    import os

    if (PACKAGE_CONFIG.parent.parent / "pyproject.toml").is_file():
        return PACKAGE_CONFIG.parent.parent / "var"
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "petmatch"


def _under(home: Path, path: Path) -> Path:
    path = Path(path).expanduser()
    return path if path.is_absolute() else home / path


_SQLITE_FILE = re.compile(r"^(sqlite(?:\+\w+)?:///)([^?]*)(.*)$")


def _sqlite_under(home: Path, url: str) -> str:
    """A SQLite URL with a relative file path gets the path under the data root."""
    match = _SQLITE_FILE.match(url)
    if match is None:
        return url
    prefix, path, query = match.groups()
    if not path or path == ":memory:" or Path(path).is_absolute():
        return url
    return f"{prefix}{home / path}{query}"


def project_path(path: Path) -> Path:
    """A relative path from the config (e.g. the comment templates) is looked up in the
    current folder first, then in the project folder that holds `configs/`."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    return PACKAGE_CONFIG.parent.parent / path


def load_settings(**overrides: Any) -> Settings:
    """Build the settings: YAML file, then environment, then explicit overrides."""
    return Settings(**overrides)
