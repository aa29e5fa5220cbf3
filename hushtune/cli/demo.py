"""The README's main job: build the demo catalog, start the services, identify two clips.

The catalog is built from 12 of the 13 committed clips; the 13th (``LEFT_OUT``) is the song the
catalog does not know. Both queries are 5 s excerpts at fixed offsets; the catalog song's one
gets pink noise at 10 dB SNR. Everything runs for real: embedded Redis, gRPC on loopback,
Concrete-ML FHE. Data lives in a temporary folder that is removed at the end. With ``tls``,
every call runs over mutual TLS with a throwaway development CA (scripts/make_dev_ca.py).
"""

from __future__ import annotations

import importlib.util
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from hushtune.cli.output import as_json, describe
from hushtune.cli.progress import StageBars
from hushtune.cli.remote import build_remote
from hushtune.core.audio import SAMPLE_RATE, load_audio
from hushtune.sdk import Client, Identification
from hushtune.sdk.transport import TLSConfig
from hushtune.services.common.config import load_settings
from hushtune.services.common.logs import setup_logging
from hushtune.services.featurizer.augment import add_noise
from hushtune.services.featurizer.sources import describe as describe_source
from hushtune.services.stack import start_stack

CATALOG_DIR = Path(__file__).resolve().parents[2] / "demo" / "catalog"
LEFT_OUT = "seahorse-adventures__8.ogg"
"""The clip kept out of the catalog: the song to be answered "unknown"."""
KNOWN_QUERY = ("amoebax-data__AngusBackground.ogg", 12.0)
"""(file, offset in seconds) of the catalog song queried with pink noise."""
UNKNOWN_QUERY = (LEFT_OUT, 10.0)
QUERY_SECONDS = 5.0
NOISE_SNR_DB = 10.0
SEED = 2026


def excerpt(name: str, offset: float, seconds: float = QUERY_SECONDS) -> NDArray[np.float32]:
    """``seconds`` of a demo clip from ``offset`` on, at the SDK's sample rate."""
    y = load_audio(CATALOG_DIR / name)
    start = int(offset * SAMPLE_RATE)
    return y[start : start + int(seconds * SAMPLE_RATE)]


def run_demo(
    *, json_output: bool = False, tls: bool = False, verbose: bool = False,
    progress: TextIO | None = None,
) -> int:
    """Run the demo (over mutual TLS with ``tls``); returns 0 when both answers are right.

    ``verbose`` logs at INFO instead of WARNING; the build's progress bars go to ``progress``
    (default: stderr), shown on a terminal only.
    """
    setup_logging("INFO" if verbose else "WARNING")
    with tempfile.TemporaryDirectory(prefix="hushtune-demo-") as data_dir:
        tls_settings, client_tls = _dev_tls(Path(data_dir) / "certs") if tls else ({}, None)
        token = secrets.token_urlsafe(32)  # the featurizer builds only for its admin: us
        settings = load_settings(
            environ={}, data_dir=data_dir, keystore_port=0, inference_port=0, featurizer_port=0,
            admin_token=token, source_roots=str(CATALOG_DIR), **tls_settings,
        )
        stack = start_stack(settings)
        try:
            figures = _run(stack.address("featurizer"), stack.address("inference"),
                           stack.address("keystore"), Path(data_dir) / "client-keys", client_tls,
                           admin_token=token, progress=progress)
        finally:
            stack.stop(grace=1.0)
    known, unknown = figures.pop("known_answer"), figures.pop("unknown_answer")
    assert isinstance(known, Identification) and isinstance(unknown, Identification)
    expected = describe_source(CATALOG_DIR / KNOWN_QUERY[0], CATALOG_DIR).song_id
    ok = known.match is not None and known.match.song_id == expected and unknown.is_unknown
    if json_output:
        answers = {"known": known.as_dict(), "unknown": unknown.as_dict(), "ok": ok}
        print(as_json({**figures, **answers}))
    else:
        print(describe(f"catalog song, pink noise {NOISE_SNR_DB:g} dB ({KNOWN_QUERY[0]})", known))
        print(describe(f"song not in the catalog ({LEFT_OUT})", unknown))
        print("figures: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
        print("demo " + ("OK: both answers are right" if ok else "FAILED: a wrong answer"))
    return 0 if ok else 1


def _dev_tls(folder: Path) -> tuple[dict[str, Any], TLSConfig]:
    """Service settings and client TLS of a fresh development CA made in ``folder``."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "make_dev_ca.py"
    spec = importlib.util.spec_from_file_location("make_dev_ca", script)
    if spec is None or spec.loader is None:
        raise ValueError(f"--tls needs {script} (a source checkout)")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise ValueError(f"--tls needs the 'cryptography' package: {exc}") from exc
    ca: dict[str, Path] = module.make_dev_ca(folder)
    settings = {
        "tls_cert_file": str(ca["server.pem"]), "tls_key_file": str(ca["server.key"]),
        "tls_client_ca_file": str(ca["ca.pem"]), "keystore_ca_file": str(ca["ca.pem"]),
        "keystore_client_cert_file": str(ca["client.pem"]),
        "keystore_client_key_file": str(ca["client.key"]),
    }
    client = TLSConfig(ca_file=ca["ca.pem"], cert_file=ca["client.pem"], key_file=ca["client.key"])
    return settings, client


def _run(
    featurizer: str, inference: str, keystore: str, key_dir: Path, tls: TLSConfig | None = None,
    *, admin_token: str = "", progress: TextIO | None = None,
) -> dict[str, object]:
    bars = StageBars(stream=progress)
    started = time.perf_counter()
    try:
        summary = build_remote(
            featurizer, str(CATALOG_DIR), [LEFT_OUT], True, bars.update, tls,
            admin_token=admin_token,
        )
    finally:
        bars.close()
    build_seconds = time.perf_counter() - started
    rng = np.random.default_rng(SEED)
    known_clip = add_noise(excerpt(*KNOWN_QUERY), "pink", NOISE_SNR_DB, rng)
    unknown_clip = excerpt(*UNKNOWN_QUERY)
    with Client(inference, keystore, key_dir=key_dir, tls=tls) as client:
        spec = client.model_spec()
        mark = time.perf_counter()
        client.keys.concrete_client(spec)
        keygen_seconds = time.perf_counter() - mark
        eval_key_bytes = len(client.keys.evaluation_keys(spec))
        client.ensure_keys_uploaded(spec)
        known = client.identify(known_clip, sr=SAMPLE_RATE)
        unknown = client.identify(unknown_clip, sr=SAMPLE_RATE)
    return {
        "catalog_version": summary["catalog_version"],
        "catalog_songs": summary["songs"],
        "catalog_build_s": round(build_seconds, 2),
        "keygen_s": round(keygen_seconds, 3),
        "eval_key_bytes": eval_key_bytes,
        "upload_bytes": known.upload_bytes,
        "response_bytes": known.response_bytes,
        "server_s": round(known.timings["server"], 4),
        "end_to_end_s": round(known.timings["total"], 3),
        "known_answer": known,
        "unknown_answer": unknown,
    }


__all__ = ["run_demo"]
