"""The ciphertext size a catalog circuit expects, so that far-off queries are refused before FHE.

A Concrete circuit's program info gives the shape of its one encrypted input (for our linear
model: features x LWE words, seed-compressed) and the word size; the serialized ciphertext is
that payload plus a few hundred bytes of framing. A query far from that size is truncated,
padded, two queries in one, or made for another circuit: deserializing and running it would
only waste a worker's time (or memory, for a huge one), so the scorer refuses it first.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

FRAMING_SLACK_BYTES = 1024
"""Bytes of serialization framing allowed above the payload (264 measured on a 118-feature
circuit); at least this much slack, or an eighth of the payload for large circuits."""


@dataclasses.dataclass(frozen=True)
class QuerySize:
    """Byte bounds of one serialized query of a circuit."""

    payload_bytes: int
    max_bytes: int

    def describe(self) -> str:
        """The bounds for an error message."""
        return f"{self.payload_bytes} to {self.max_bytes} bytes"


def expected_query_size(model_server: Any) -> QuerySize | None:
    """Bounds of the one encrypted input of a loaded circuit (``concrete.ConcreteCircuit``, or
    anything with its ``program_info``).

    Returns None when the server is not a Concrete one, or its circuit does not take exactly
    one encrypted input: then only the configured byte limit applies.
    """
    try:
        program_info = model_server.program_info
        circuits = program_info.get_circuits()
        inputs = circuits[0].get_inputs() if len(circuits) == 1 else []
        if len(inputs) != 1 or inputs[0].get_type_info().is_plaintext():
            return None
        raw = inputs[0].get_raw_info()
        words = math.prod(int(d) for d in raw.get_shape())
        payload = words * (int(raw.get_integer_precision()) // 8)
    except (AttributeError, IndexError, RuntimeError, TypeError, ValueError):
        return None
    if payload <= 0:
        return None
    return QuerySize(payload, payload + max(FRAMING_SLACK_BYTES, payload // 8))
