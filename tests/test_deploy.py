"""docker-compose.yml and the Dockerfile stay honest: they parse, and every setting they pass
is one petmatch actually reads."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bot.config import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent


def _compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker and subprocess.run(
        [docker, "compose", "version"], capture_output=True, check=False
    ).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    pytest.skip("neither `docker compose` nor `docker-compose` is installed")


@pytest.fixture(scope="module")
def compose_config(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("compose")
    shutil.copy(REPO / "docker-compose.yml", work / "docker-compose.yml")
    (work / "secrets").mkdir()
    (work / "secrets" / "vk_token").write_text("not-a-real-token")
    result = subprocess.run(
        [*_compose_command(), "-f", str(work / "docker-compose.yml"), "config"],
        capture_output=True, text=True, cwd=work, check=False,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_runs_postgres_and_the_bot(compose_config):
    services = compose_config["services"]
    assert set(services) == {"db", "bot", "worker", "web"}
    assert services["db"]["image"].startswith("postgres")
    for name in ("bot", "worker", "web"):
        assert "db" in services[name]["depends_on"]
    assert services["worker"]["command"] == ["petmatch", "worker"]
    assert "petmatch web --host 0.0.0.0 --port 8080" in " ".join(services["web"]["command"])
    # The desk listens on this machine only; an HTTPS proxy goes in front before exposing it.
    (port,) = services["web"]["ports"]
    assert str(port.get("host_ip", port) if isinstance(port, dict) else port).startswith(
        "127.0.0.1"
    )


@pytest.mark.parametrize("service", ["bot", "worker", "web"])
def test_services_share_the_database_and_the_files(compose_config, service):
    environment = compose_config["services"][service]["environment"]
    if service != "web":  # the desk runs no vision stage
        assert environment["PETMATCH_WORKERS__ENABLED"] == "true"
    assert environment["PETMATCH_WORKERS__FILES"] == "database"
    bot = compose_config["services"]["bot"]["environment"]
    assert environment["PETMATCH_DATABASE_URL"] == bot["PETMATCH_DATABASE_URL"]
    assert "scale" not in compose_config["services"][service]  # scaled from the command line


def test_bot_environment_is_understood_by_settings(compose_config, monkeypatch, tmp_path):
    environment = compose_config["services"]["bot"]["environment"]
    token_file = tmp_path / "vk_token"
    token_file.write_text("secret-token-value")
    for key in list(os.environ):
        if key.startswith("PETMATCH_"):
            monkeypatch.delenv(key)
    for key, value in environment.items():
        assert key.startswith("PETMATCH_"), key
        monkeypatch.setenv(key, str(value))
    monkeypatch.setenv("PETMATCH_VK__TOKEN_FILE", str(token_file))
    settings = load_settings()
    assert settings.database_url.startswith("postgresql+psycopg2://")
    assert settings.home == Path("/data")
    from bot.vk.credentials import read_credential  # token files are read when needed

    assert read_credential(settings.vk).secret.get_secret_value() == "secret-token-value"
    assert "secret-token-value" not in repr(settings)


def test_no_token_in_the_compose_file():
    text = (REPO / "docker-compose.yml").read_text()
    assert "PETMATCH_VK__TOKEN:" not in text
    assert "PETMATCH_VK__TOKEN_FILE" in text


def test_dockerfile_copies_every_package_and_sets_only_known_settings():
    dockerfile = (REPO / "Dockerfile").read_text()
    for package in ("bot", "reid", "segmentation", "index", "text", "configs"):
        assert f"COPY {package} ./{package}" in dockerfile
    known = {f"PETMATCH_{name.upper()}" for name in Settings.model_fields}
    for token in dockerfile.split():
        if token.startswith("PETMATCH_") and "=" in token:
            name = token.split("=", 1)[0]
            assert name in known, f"Dockerfile sets {name}, which Settings does not read"
