"""expected_query_size: bounds from a real circuit's program info, None for anything else."""

from __future__ import annotations

import types

from hushtune.services.fhe_inference.query_size import (
    FRAMING_SLACK_BYTES,
    QuerySize,
    expected_query_size,
)


def test_a_server_without_concrete_program_info_has_no_bound() -> None:
    assert expected_query_size(object()) is None
    assert expected_query_size(types.SimpleNamespace(server=None)) is None


def test_the_bounds_allow_framing_above_the_payload() -> None:
    size = QuerySize(2832, 2832 + FRAMING_SLACK_BYTES)
    assert size.describe() == f"2832 to {2832 + FRAMING_SLACK_BYTES} bytes"
