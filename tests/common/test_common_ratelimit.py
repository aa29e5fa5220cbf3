"""The per-client rate limit on a real Redis, and how a refusal reaches an SDK caller over gRPC."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
import redis

from hushtune.core import errors as sdk_errors
from hushtune.sdk import transport
from hushtune.services.common.errors import RETRY_AFTER_METADATA, RateLimited, grpc_errors
from hushtune.services.common.ratelimit import KEY_PREFIX, RateLimiter

WINDOW = 60.0


def limiter(redis_client: redis.Redis, limit: int = 3) -> RateLimiter:
    return RateLimiter(redis_client, limit=limit, window_seconds=WINDOW)


def test_queries_up_to_the_limit_are_admitted_and_counted(redis_client: redis.Redis) -> None:
    counts = [limiter(redis_client).admit("k_a") for _ in range(3)]
    assert [a.count for a in counts if a] == [1, 2, 3], counts
    assert all(a and 0 < a.retry_after_seconds <= WINDOW for a in counts), counts


def test_the_query_past_the_limit_is_refused_with_when_to_retry(redis_client: redis.Redis) -> None:
    limit = limiter(redis_client)
    for _ in range(3):
        limit.admit("k_a")
    with pytest.raises(RateLimited, match=r"more than 3 encrypted queries in 60 s") as raised:
        limit.admit("k_a", "encrypted queries")
    assert 0 < raised.value.retry_after_seconds <= WINDOW, raised.value.retry_after_seconds
    assert "retry in" in str(raised.value)
    assert "k_a" not in str(raised.value), "the message should not echo the key id"


def test_the_counter_expires_with_its_window(redis_client: redis.Redis) -> None:
    limiter(redis_client).admit("k_a")
    ttl_ms = redis_client.pttl(KEY_PREFIX + "k_a")
    assert 0 < ttl_ms <= WINDOW * 1000, f"counter ttl {ttl_ms} ms is not within the window"


def test_a_new_window_gives_a_fresh_budget(redis_client: redis.Redis) -> None:
    limit = limiter(redis_client, limit=1)
    limit.admit("k_a")
    with pytest.raises(RateLimited):
        limit.admit("k_a")
    redis_client.delete(KEY_PREFIX + "k_a")  # what the window's expiry does
    admission = limit.admit("k_a")
    assert admission is not None and admission.count == 1, admission


def test_clients_have_separate_budgets(redis_client: redis.Redis) -> None:
    limit = limiter(redis_client, limit=1)
    limit.admit("k_a")
    admission = limit.admit("k_b")
    assert admission is not None and admission.count == 1, admission


def test_workers_sharing_redis_share_one_budget(redis_client: redis.Redis) -> None:
    first, second = limiter(redis_client, limit=2), limiter(redis_client, limit=2)
    first.admit("k_a")
    second.admit("k_a")
    with pytest.raises(RateLimited):
        first.admit("k_a")


def test_a_limit_of_zero_admits_everything_without_touching_redis(
    redis_client: redis.Redis,
) -> None:
    limit = limiter(redis_client, limit=0)
    assert not limit.enabled
    assert all(limit.admit("k_a") is None for _ in range(100))
    assert redis_client.exists(KEY_PREFIX + "k_a") == 0


@pytest.mark.parametrize(("limit", "window"), [(-1, 60.0), (1, 0.0), (1, -5.0)])
def test_impossible_settings_are_refused(
    redis_client: redis.Redis, limit: int, window: float
) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        RateLimiter(redis_client, limit=limit, window_seconds=window)


@contextlib.contextmanager
def limited_server(redis_client: redis.Redis) -> Iterator[grpc.Channel]:
    """A real gRPC server whose one method spends a budget of 1 through ``grpc_errors``."""
    limit = limiter(redis_client, limit=1)

    def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
        with grpc_errors(context, "Query"):
            limit.admit(request.decode(), "encrypted queries")
        return b"ok"

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.unary_unary_rpc_method_handler(handle)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("hushtune.test.v1.Limited", {"Query": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        server.stop(None).wait()


def test_a_refusal_is_resource_exhausted_with_a_retry_after_trailer(
    redis_client: redis.Redis,
) -> None:
    with limited_server(redis_client) as channel:
        call = channel.unary_unary("/hushtune.test.v1.Limited/Query")
        assert call(b"k_a", timeout=10) == b"ok"
        with pytest.raises(grpc.RpcError) as raised:
            call(b"k_a", timeout=10)
    error = raised.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.code()
    assert "retry in" in (error.details() or ""), error.details()
    trailers = dict(error.trailing_metadata() or ())
    assert 0 < float(trailers[RETRY_AFTER_METADATA]) <= WINDOW, trailers

    mapped = transport.from_rpc_error(error, "Score")
    assert isinstance(mapped, sdk_errors.RateLimitedError), type(mapped)
    assert isinstance(mapped, sdk_errors.OverloadedError), "callers catching overload miss it"
    assert 0 < mapped.retry_after_seconds <= WINDOW, mapped.retry_after_seconds
    assert "retry in" in str(mapped), mapped


def test_resource_exhausted_without_a_trailer_stays_a_plain_overload(
    redis_client: redis.Redis,
) -> None:
    def busy(request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "all FHE slots are busy")
        raise AssertionError("unreachable")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    handler = grpc.unary_unary_rpc_method_handler(busy)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("hushtune.test.v1.Busy", {"Q": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, pytest.raises(
            grpc.RpcError
        ) as raised:
            channel.unary_unary("/hushtune.test.v1.Busy/Q")(b"", timeout=10)
    finally:
        server.stop(None).wait()
    mapped = transport.from_rpc_error(raised.value, "Score")
    assert type(mapped) is sdk_errors.OverloadedError, type(mapped)
