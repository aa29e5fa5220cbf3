"""How the CLI shows answers to people (text) and scripts (``--json``)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping

from hushtune.cli import IMPORTED
from hushtune.sdk.client import Identification


def process_seconds() -> float:
    """Seconds since this process started: interpreter start and imports included.

    Read from ``/proc`` (to 10 ms); where there is none, the time since ``hushtune.cli`` was
    imported, which leaves out the interpreter's start.
    """
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        with open("/proc/uptime", encoding="ascii") as uptime:
            now = float(uptime.read().split()[0])
        return max(0.0, now - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - IMPORTED


def command_timings(
    sdk: Mapping[str, float], *, setup: float, call: float, listen: float = 0.0
) -> dict[str, float]:
    """The timings of one ``hushtune identify``, in seconds, whose parts add up to ``total``.

    Args:
        sdk: the SDK's timings of the identification (featurize, encrypt, ..., total).
        setup: process start, imports, the connection check and channel set-up: from the
            process's start to the SDK call, less ``listen``.
        call: wall-clock seconds of the SDK's ``identify`` call.
        listen: seconds spent recording the microphone (``--listen``), if any.

    Returns:
        ``setup``, ``listen`` (when recording), the SDK's parts, ``other`` (the rest of the
        call: keys, model spec, call overheads) and ``total``.
    """
    parts = {name: value for name, value in sdk.items() if name != "total"}
    timings = {"setup": setup, **({"listen": listen} if listen else {}), **parts}
    timings["other"] = max(0.0, call - sum(parts.values()))
    timings["total"] = sum(timings.values())
    return timings


def timings_line(timings: Mapping[str, float]) -> str:
    """``featurize 900 ms, ..., other 12 ms = total 1002 ms``: parts that add up to the total.

    When the parts fall short of ``total``, the rest is shown as ``other``. Each part is the
    difference of rounded running sums, so the printed milliseconds add up exactly.
    """
    parts = {name: value for name, value in timings.items() if name != "total"}
    total = timings.get("total", sum(parts.values()))
    if total - sum(parts.values()) > 0.0005:
        parts["other"] = parts.get("other", 0.0) + total - sum(parts.values())
    shown, running, printed = [], 0.0, 0
    for name, value in parts.items():
        running += value
        ms = round(running * 1000) - printed
        printed += ms
        shown.append(f"{name} {ms} ms")
    return ", ".join(shown) + f" = total {printed} ms"


def describe(
    label: str, answer: Identification, timings: Mapping[str, float] | None = None
) -> str:
    """A few readable lines about one identification; ``timings`` default to the SDK's."""
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
        + timings_line(answer.timings if timings is None else timings)
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
