"""How the CLI shows answers to people (text) and scripts (``--json``)."""

from __future__ import annotations

import json

from hushtune.sdk.client import Identification


def describe(label: str, answer: Identification) -> str:
    """A few readable lines about one identification."""
    if answer.match is not None:
        head = f"{label}: MATCH {answer.match.title} - {answer.match.artist}"
    else:
        head = f"{label}: UNKNOWN (not confidently in the catalog)"
    lines = [
        head,
        f"  open-set score {answer.open_set_score:.2f} vs threshold {answer.threshold:.2f}; "
        f"top-1 probability {answer.confidence:.2f}",
        "  candidates: "
        + ", ".join(f"{c.song.title} ({c.probability:.2f})" for c in answer.candidates),
        "  "
        + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in answer.timings.items())
        + f"; up {answer.upload_bytes / 1024:.1f} KiB, down {answer.response_bytes / 1024:.1f} KiB",
    ]
    if answer.aligned_count is not None:  # the version has landmark evidence (issue 14)
        up = sum(v for k, v in answer.stage_bytes.items() if k.endswith("_up"))
        down = sum(v for k, v in answer.stage_bytes.items() if k.endswith("_down"))
        lines.append(
            f"  decided by {answer.decided_by}: {answer.aligned_count} hashes aligned with the "
            f"best of {len(answer.shortlist)} songs fetched privately; all stages up "
            f"{up / 1024:.1f} KiB, down {down / 1024:.1f} KiB"
        )
    return "\n".join(lines)


def as_json(payload: object) -> str:
    """Stable JSON for scripts."""
    return json.dumps(payload, indent=2, sort_keys=True)


def error_json(command: str, error: Exception, exit_code: int) -> str:
    """The JSON object a ``--json`` command prints on stderr when it fails.

    ``code`` is the service's status name for service errors, ``INVALID_ARGUMENT`` for bad
    input (a missing file, a wrong flag value).
    """
    code = getattr(error, "code", None)
    return as_json({"error": {
        "command": command,
        "message": str(error),
        "code": str(code) if code is not None else "INVALID_ARGUMENT",
        "exit_code": exit_code,
    }})
