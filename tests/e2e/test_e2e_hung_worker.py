"""A worker that hangs without closing its connections costs a query one attempt, not its deadline.

The hung worker is a real gRPC server on loopback serving the inference service whose every
call waits until the caller gives up, the way a SIGSTOPped process or a network cut without a
reset looks to a client: the connection stays up and nothing comes back. The SDK balances over
it and the real worker (round robin); each attempt gets ``attempt_timeout`` seconds, so a call
sent to the hung one is retried on the real one and every query is answered correctly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from hushtune.core.audio import SAMPLE_RATE
from hushtune.core.errors import UnavailableError
from hushtune.protos.inference.v1 import inference_pb2
from hushtune.sdk import Client

pytestmark = pytest.mark.e2e

ATTEMPT_SECONDS = 1.5
QUERIES = 6
KNOWN = "seahorse-adventures__3.ogg"


SERVICE = inference_pb2.DESCRIPTOR.services_by_name["InferenceService"]


class HungInference(grpc.GenericRpcHandler):
    """Accepts every call of the inference service and answers none: each waits until its
    caller cancels it. Every method hangs, the landmark ones (GetHint, Bag, Retrieve) too: a
    servicer that left some unimplemented answered those at once with UNIMPLEMENTED, which is
    not what a hung worker does (and failed this test whenever round robin sent one there)."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        self._methods = {f"/{SERVICE.full_name}/{m.name}" for m in SERVICE.methods}

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        if handler_call_details.method not in self._methods:
            return None
        return grpc.stream_stream_rpc_method_handler(self._hang)

    def _hang(self, request_iterator: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        with self._lock:
            self.calls += 1
        gone = threading.Event()
        context.add_callback(gone.set)
        gone.wait(timeout=120)
        yield from ()


@pytest.fixture
def hung_worker() -> Iterator[tuple[str, HungInference]]:
    handler = HungInference()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", handler
    server.stop(grace=None)


def test_queries_get_past_a_hung_worker(e2e_stack, hung_worker, tmp_path: Path) -> None:
    address, hung = hung_worker
    client = Client(
        [e2e_stack.inference, address], e2e_stack.keystore, key_dir=tmp_path / "keys",
        timeout=60.0, attempt_timeout=ATTEMPT_SECONDS, spec_refresh_seconds=0.0,
    )
    try:
        answers = [
            client.identify(e2e_stack.excerpt(KNOWN, 2.0 + 3 * i), sr=SAMPLE_RATE)
            for i in range(QUERIES)
        ]
    finally:
        client.close()
    assert hung.calls >= 1, "no call reached the hung worker: the test proved nothing"
    assert all(a.match is not None and a.match.song_id == e2e_stack.song_id(KNOWN)
               for a in answers), [a.as_dict() for a in answers]


def test_without_another_worker_the_deadline_still_ends_the_call(
    e2e_stack, hung_worker, tmp_path: Path
) -> None:
    address, hung = hung_worker
    client = Client(
        address, e2e_stack.keystore, key_dir=tmp_path / "keys",
        timeout=4.0, attempt_timeout=ATTEMPT_SECONDS,
    )
    try:
        with pytest.raises(UnavailableError, match="DEADLINE_EXCEEDED"):
            client.identify(e2e_stack.excerpt(KNOWN, 2.0), sr=SAMPLE_RATE)
    finally:
        client.close()
    assert hung.calls >= 2, "the SDK did not retry after an attempt ran out"
