"""The edges of the ``hushtune`` command (issue 16): services down, errors under ``--json``,
folders given as files, ``--version``, busy ports and help, run in this process."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hushtune.cli.main import main


@pytest.fixture(autouse=True)
def root_logging_restored() -> Iterator[None]:
    """``main`` sets up the service logs on the root logger; later tests expect it as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)

REPO = Path(__file__).resolve().parents[2]
CLIP = REPO / "demo" / "catalog" / "seahorse-adventures__3.ogg"


def unused_port() -> int:
    """A loopback port where nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def identify_down(*flags: str) -> tuple[int, float, str]:
    """``identify`` of a real clip against addresses where nothing listens."""
    inference, keystore = f"127.0.0.1:{unused_port()}", f"127.0.0.1:{unused_port()}"
    started = time.monotonic()
    code = main(["identify", str(CLIP), "--inference", inference, "--keystore", keystore,
                 "--connect-timeout", "2", *flags])
    return code, time.monotonic() - started, keystore


def test_identify_with_services_down_fails_fast_naming_the_address(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, seconds, keystore = identify_down()
    stderr = capsys.readouterr().err
    assert code == 2
    assert seconds < 15, seconds  # the SDK alone would wait its 60 s timeout
    assert f"cannot reach the keystore at {keystore}" in stderr, stderr


def test_identify_json_with_services_down_prints_a_json_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, keystore = identify_down("--json")
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    error = json.loads(captured.err)["error"]
    assert error["command"] == "identify" and error["code"] == "UNAVAILABLE"
    assert keystore in error["message"] and error["exit_code"] == 2


def test_identify_json_of_a_missing_file_prints_a_json_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-clip.ogg"
    code = main(["identify", str(missing), "--json", "--inference", "127.0.0.1:1"])
    error = json.loads(capsys.readouterr().err)["error"]
    assert code == 2
    assert error == {"command": "identify", "code": "INVALID_ARGUMENT", "exit_code": 2,
                     "message": f"{missing}: no such file"}


def test_identify_of_a_folder_says_it_is_a_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["identify", str(tmp_path), "--inference", "127.0.0.1:1"])
    stderr = capsys.readouterr().err
    assert code == 2
    assert f"{tmp_path}: is a directory, not an audio file" in stderr, stderr
    assert "no such file" not in stderr


def test_version_prints_the_installed_package_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"hushtune {version('hushtune')}"


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = int(held.getsockname()[1])
        env = {**os.environ, "HOME": str(tmp_path), "HUSHTUNE_DATA_DIR": str(tmp_path / "data")}
        env.pop("REDIS_URL", None)
        result = subprocess.run(  # its own process, with a timeout: a serve that binds never ends
            [sys.executable, "-m", "hushtune.cli.main", "serve", "--only", "keystore",
             "--host", "127.0.0.1", "--keystore-port", str(port)],
            capture_output=True, text=True, timeout=120, env=env, cwd=REPO,
        )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith("hushtune serve:")]
    assert ours == [f"hushtune serve: could not bind 127.0.0.1:{port}: is it in use?"], (
        result.stderr
    )


def test_identify_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["identify", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "(default: 127.0.0.1:50052)" in text and "(default: 5.0)" in text, text
    assert "(default: None)" not in text and "(default: False)" not in text


def test_serve_help_groups_the_service_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = capsys.readouterr().out
    options, settings = text.split("\nservice settings (each also an environment variable):\n")
    options = options.split("\noptions:\n")[1]  # not the usage line, which names every flag
    assert "--only" in options and "--keystore-port" not in options
    assert "--keystore-port KEYSTORE_PORT" in settings
    assert "(default: 50051)" in " ".join(settings.split()), settings


def hushtune_folders(home: Path) -> dict[str, tuple[int, int]]:
    """Every path under a home's hushtune folders, with its size and modification time."""
    found: dict[str, tuple[int, int]] = {}
    for root in (home / ".local" / "share" / "hushtune", home / ".cache" / "hushtune"):
        for path in [root, *root.rglob("*")] if root.exists() else []:
            stat = path.stat()
            found[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return found


def test_a_cli_call_with_default_folders_leaves_the_real_home_alone(
    monkeypatch: pytest.MonkeyPatch, real_home: Path
) -> None:
    test_home = Path.home()
    assert test_home != real_home
    for name in ("REDIS_URL", "HUSHTUNE_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)  # the embedded Redis, in the default data dir
    before = hushtune_folders(real_home)
    codes: list[int] = []
    with socket.socket() as held:  # a busy port: serve starts Redis, then stops at once
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = str(held.getsockname()[1])
        serving = threading.Thread(
            target=lambda: codes.append(main(["serve", "--only", "keystore", "--host",
                                              "127.0.0.1", "--keystore-port", port])),
            daemon=True,  # a serve that bound after all must not keep the session alive
        )
        serving.start()
        serving.join(timeout=120)
    assert codes == [2], codes
    assert (test_home / ".local" / "share" / "hushtune").is_dir()  # it did write its data dir
    assert hushtune_folders(real_home) == before


def test_identify_refuses_a_connect_timeout_of_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["identify", str(CLIP), "--connect-timeout", "0"])
    assert code == 2
    assert "--connect-timeout must be more than 0 seconds, got 0" in capsys.readouterr().err
