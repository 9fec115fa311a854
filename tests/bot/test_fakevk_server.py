"""The fake VK server itself: VK's envelope, token check, faults, and the `fake-vk` command."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import requests

from bot.fakevk import FakeVkServer, seed_demo
from bot.vk.gateway import wall_get_code
from bot.vk.models import WallRequest


def _post(vk: FakeVkServer, method: str, **params: object) -> requests.Response:
    data = {"access_token": vk.token, "v": "5.199", **params}
    with requests.Session() as session:
        session.trust_env = False
        return session.post(vk.api_url + method, data=data, timeout=5)


def test_error_envelope_is_vks(fake_vk: FakeVkServer) -> None:
    body = _post(fake_vk, "wall.get", owner_id=-1).json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["error_code"] == 100
    assert isinstance(error["error_msg"], str)
    assert {"key": "method", "value": "wall.get"} in error["request_params"]
    assert all(set(p) == {"key", "value"} for p in error["request_params"])


def test_wrong_or_missing_token_is_error_5(fake_vk: FakeVkServer) -> None:
    assert (
        _post(fake_vk, "wall.get", owner_id=-1, access_token="nope").json()["error"]["error_code"]
        == 5
    )
    assert (
        _post(fake_vk, "wall.get", owner_id=-1, access_token="").json()["error"]["error_code"] == 5
    )


def test_captcha_error_carries_sid_and_image(fake_vk: FakeVkServer) -> None:
    fake_vk.inject_fault("wall.get", 14)
    error = _post(fake_vk, "wall.get", owner_id=-1).json()["error"]
    assert error["error_code"] == 14 and error["captcha_sid"] and error["captcha_img"]


def test_faults_count_down_and_clear(fake_vk: FakeVkServer) -> None:
    fake_vk.add_group(1, "a", "A")
    fake_vk.inject_fault("wall.get", 6, times=2)
    codes = [
        _post(fake_vk, "wall.get", owner_id=-1).json().get("error", {}).get("error_code")
        for _ in range(3)
    ]
    assert codes == [6, 6, None]
    fake_vk.inject_fault("wall.get", "http502", times=None)
    assert _post(fake_vk, "wall.get", owner_id=-1).status_code == 502
    fake_vk.clear_faults()
    assert _post(fake_vk, "wall.get", owner_id=-1).json()["response"]["count"] == 0
    with pytest.raises(ValueError, match="unknown fault"):
        fake_vk.inject_fault("wall.get", "explode")


def test_execute_answers_the_gateway_batch_with_execute_errors(fake_vk: FakeVkServer) -> None:
    fake_vk.add_group(1, "a", "A")
    fake_vk.add_group(2, "b", "B", is_closed=2)
    fake_vk.add_post(1, text="x")
    code = wall_get_code([WallRequest(owner_id=-1), WallRequest(owner_id=-2)])
    body = _post(fake_vk, "execute", code=code).json()
    first, second = body["response"]
    assert first["count"] == 1 and second is False
    assert body["execute_errors"] == [
        {
            "method": "wall.get",
            "error_code": 15,
            "error_msg": "Access denied: this wall available only for community members",
        }
    ]
    bad = _post(fake_vk, "execute", code="return API.users.get();").json()
    assert bad["error"]["error_code"] == 12


def test_groups_get_by_id_has_the_5_199_shape(fake_vk: FakeVkServer) -> None:
    fake_vk.add_group(9, "nine", "Девять")
    response = _post(fake_vk, "groups.getById", group_ids="nine").json()["response"]
    assert set(response) == {"groups", "profiles"}
    assert response["groups"][0]["id"] == 9


def test_seed_demo_builds_a_usable_world(fake_vk: FakeVkServer) -> None:
    seed_demo(fake_vk, now=1_700_000_000)
    wall = _post(fake_vk, "wall.get", owner_id=-1001, count=100).json()["response"]
    assert wall["items"][0]["is_pinned"] == 1
    photo = wall["items"][-1]["attachments"][0]["photo"]["orig_photo"]["url"]
    with requests.Session() as session:
        session.trust_env = False
        answer = session.get(photo, timeout=5)
    assert answer.headers["Content-Type"] == "image/jpeg" and answer.content[:2] == b"\xff\xd8"


def test_fake_vk_command_serves_until_interrupted() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from bot.cli import main; main()",
            "fake-vk",
            "--port",
            "0",
            "--seed-demo",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as in a terminal: a test run started in the background (nohup, `&`) ignores
        # SIGINT, and an ignored SIGINT is inherited, so the command would never hear it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("fake VK API at http://127.0.0.1:")
        api_url = first.split(" at ", 1)[1].strip()
        token = process.stdout.readline().split(": ", 1)[1].strip()
        # Interrupt only once it serves: a Ctrl-C while it still prints its help is another case.
        for line in process.stdout:
            if line.startswith("Ctrl-C stops it"):
                break
        with requests.Session() as session:
            session.trust_env = False
            body = session.post(
                api_url + "utils.resolveScreenName",
                data={"screen_name": "poteryashki_demo_msk", "access_token": token, "v": "5.199"},
                timeout=5,
            ).json()
        assert body == {"response": {"object_id": 1001, "type": "group"}}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=30)  # a loaded CI machine is slow to exit
        except subprocess.TimeoutExpired:
            process.kill()  # never leak it into the next test
            process.communicate()
            raise
    assert process.returncode == 0, err
    assert "stopped" in out
