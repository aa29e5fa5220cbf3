"""The ``hushtune`` command as operators and scripts use it: real processes, real ports."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.admin_token import TOKEN

REPO = Path(__file__).resolve().parents[2]
CLIPS = REPO / "demo" / "catalog"
HUSHTUNE = [sys.executable, "-m", "hushtune.cli.main"]


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HUSHTUNE, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_identify_a_missing_file_says_so_without_a_network_call() -> None:
    result = run("identify", "/no/such/clip.ogg", "--inference", "127.0.0.1:1", timeout=30)
    assert result.returncode == 2
    assert "no such file" in result.stderr, result.stderr


@pytest.mark.parametrize(
    "flags", [("--hidden-units", "-1"), ("--hidden-units", "8", "--featurizer", "127.0.0.1:1")]
)
def test_build_refuses_hidden_units_it_cannot_honour(flags: tuple[str, ...]) -> None:
    result = run("build", str(CLIPS), *flags, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--hidden-units" in result.stderr, result.stderr


def test_build_refuses_no_landmarks_through_a_featurizer() -> None:
    result = run("build", str(CLIPS), "--no-landmarks", "--featurizer", "127.0.0.1:1",
                 timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--no-landmarks" in result.stderr, result.stderr


def test_listen_without_a_usable_microphone_is_a_clear_error() -> None:
    result = run("identify", "--listen", "2", timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "microphone" in result.stderr or "PortAudio" in result.stderr, result.stderr


def test_listen_refuses_an_absurd_duration() -> None:
    result = run("identify", "--listen", "500", timeout=30)
    assert result.returncode == 2
    assert "1 to 60 seconds" in result.stderr, result.stderr


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`hushtune serve` in its own process with an embedded Redis, stopped with SIGTERM."""
    data_dir = tmp_path_factory.mktemp("serve")
    ports = {name: free_port() for name in ("keystore", "inference", "featurizer")}
    env = {
        **os.environ,
        "HUSHTUNE_DATA_DIR": str(data_dir),
        "HUSHTUNE_KEYSTORE_PORT": str(ports["keystore"]),
        "HUSHTUNE_INFERENCE_PORT": str(ports["inference"]),
        "HUSHTUNE_FEATURIZER_PORT": str(ports["featurizer"]),
        "HUSHTUNE_KEYSTORE_ADDRESS": f"127.0.0.1:{ports['keystore']}",
        "HUSHTUNE_KEY_DIR": str(data_dir / "client-keys"),
        # The server checks the token, the command sends it: one variable, as an operator's.
        "HUSHTUNE_ADMIN_TOKEN": TOKEN,
        "HUSHTUNE_SOURCE_ROOTS": str(data_dir),
    }
    env.pop("REDIS_URL", None)
    process = subprocess.Popen(
        [*HUSHTUNE, "serve"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", ports["featurizer"])) == 0:
                break
        assert process.poll() is None, process.communicate()[1]
        time.sleep(0.2)
    folder = data_dir / "clips"
    folder.mkdir()
    for name in (
        "amoebax-data__AngusBackground.ogg",
        "amoebax-data__menu.ogg",
        "seahorse-adventures__1.ogg",
        "seahorse-adventures__3.ogg",
    ):
        shutil.copy(CLIPS / name, folder / name)
    yield {"env": env, "folder": str(folder), **{k: f"127.0.0.1:{v}" for k, v in ports.items()}}
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr[-2000:]


def test_build_list_and_identify_through_the_command(served: dict[str, str]) -> None:
    env = served["env"]
    assert isinstance(env, dict)
    built = run(
        "build", str(served["folder"]), "--featurizer", str(served["featurizer"]), "--json", env=env
    )
    assert built.returncode == 0, built.stderr
    summary = json.loads(built.stdout)
    assert summary["songs"] == 4 and summary["current"] is True

    listed = run("catalogs", "--featurizer", str(served["featurizer"]), "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    versions = [c["catalog_version"] for c in json.loads(listed.stdout)]
    assert summary["catalog_version"] in versions

    clip = Path(str(served["folder"])) / "seahorse-adventures__3.ogg"
    services = ("--inference", str(served["inference"]), "--keystore", str(served["keystore"]))
    started = time.monotonic()
    answer = run("identify", str(clip), "--json", *services, env=env)  # new keys: generated
    wall = time.monotonic() - started
    assert answer.returncode == 0, answer.stderr
    assert answer.stderr == "", "library noise on stderr without --verbose:\n" + answer.stderr
    decoded = json.loads(answer.stdout)
    assert decoded["catalog_version"] == summary["catalog_version"]
    assert decoded["candidates"][0]["title"] == "3", decoded["candidates"]
    assert decoded["upload_bytes"] > 0 and decoded["response_bytes"] > 0
    timings = decoded["timings"]
    parts = sum(v for k, v in timings.items() if k != "total")
    assert abs(parts - timings["total"]) < 1e-6, timings
    # The total is the command's run, set-up (interpreter start, imports, channels) included:
    # all but the process's exit, as a stopwatch around the command sees it.
    assert timings["setup"] > 0.2 and 0.7 * wall < timings["total"] <= wall, (timings, wall)

    verbose = run("identify", str(clip), *services, "--verbose",
                  "--key-dir", str(Path(str(served["folder"])).parent / "verbose-keys"), env=env)
    assert verbose.returncode == 0, verbose.stderr
    assert "KeySetCache" in verbose.stderr, verbose.stderr  # the noise the quiet run kept off
    assert re.search(r"setup \d+ ms, .* = total \d+ ms", verbose.stdout), verbose.stdout


def test_build_of_a_missing_folder_is_invalid_argument(served: dict[str, str]) -> None:
    env = served["env"]
    assert isinstance(env, dict)
    missing = str(Path(str(served["folder"])).parent / "no-such-folder")
    result = run("build", missing, "--featurizer", str(served["featurizer"]), env=env)
    assert result.returncode == 2
    assert "INVALID_ARGUMENT" in result.stderr and missing in result.stderr, result.stderr
    outside = run("build", "/etc", "--featurizer", str(served["featurizer"]), env=env)
    assert outside.returncode == 2
    assert "outside the featurizer's source roots" in outside.stderr, outside.stderr


def test_a_build_without_the_token_is_refused(served: dict[str, str]) -> None:
    env = {k: v for k, v in dict(served["env"]).items() if k != "HUSHTUNE_ADMIN_TOKEN"}
    result = run("build", str(served["folder"]), "--featurizer", str(served["featurizer"]),
                 env=env)
    assert result.returncode == 2
    assert "UNAUTHENTICATED" in result.stderr and "admin token" in result.stderr, result.stderr
