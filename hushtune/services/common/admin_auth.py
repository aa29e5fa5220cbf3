"""The admin credential: who may change catalogs (build, update, promote, roll back).

A featurizer RPC that changes state needs a bearer token in its metadata,
``authorization: Bearer <token>``, equal (``hmac.compare_digest``) to one the operator
configured: ``admin_token`` (comma-separated) or ``admin_token_file`` (one per line). Several
tokens are accepted at once so that a new one can be rolled out before the old one is removed.

What happens without a configured token is decided here, once:

- no token configured: every state-changing RPC is refused (PERMISSION_DENIED, saying no admin
  token is configured), unless
- ``allow_unauthenticated_admin`` is set, which start-up accepts only when the services bind a
  loopback address: then anyone who can reach loopback may change catalogs (development).

A call with no token, or a malformed ``authorization`` value, is UNAUTHENTICATED; a call with a
token that matches none is PERMISSION_DENIED. Reads (ListCatalogs, GetModelSpec) need nothing.
Tokens never appear in errors or logs.
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Iterable
from pathlib import Path

from hushtune.services.common.config import Settings, env_name
from hushtune.services.common.errors import PermissionDenied, Unauthenticated

METADATA_KEY = "authorization"
"""gRPC metadata key of the admin token (lower case, as gRPC requires)."""
SCHEME = "Bearer "
MIN_TOKEN_CHARS = 16
"""Shortest token start-up accepts: a guessable token is no credential."""
MAKE_ONE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
"""How the messages tell an operator to make a token."""


@dataclasses.dataclass(frozen=True)
class AdminGuard:
    """Checks the admin token of a state-changing call (see the module doc)."""

    tokens: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    allow_unauthenticated: bool = False

    def check(self, metadata: Iterable[tuple[str, str | bytes]]) -> None:
        """Return when the call may change state; raise otherwise.

        Args:
            metadata: the call's invocation metadata (key, value) pairs.

        Raises:
            Unauthenticated: no token sent, or not as ``Bearer <token>``.
            PermissionDenied: the token matches none configured, or none is configured.
        """
        if not self.tokens:
            if self.allow_unauthenticated:
                return
            raise PermissionDenied(
                "this featurizer refuses catalog changes: its operator configured no admin "
                f"token ({env_name('admin_token')} or {env_name('admin_token_file')})"
            )
        sent = _bearer(metadata)
        matched = False
        for token in self.tokens:  # every token compared, so the time names none of them
            matched |= hmac.compare_digest(sent.encode(), token.encode())
        if not matched:
            raise PermissionDenied("the admin token sent is not one this featurizer accepts")


def _bearer(metadata: Iterable[tuple[str, str | bytes]]) -> str:
    values = [v for k, v in metadata if k.lower() == METADATA_KEY]
    if not values:
        raise Unauthenticated(
            "this call changes catalogs and needs the admin token: send the metadata "
            f"'{METADATA_KEY}: {SCHEME}<token>' (hushtune: --admin-token or "
            f"{env_name('admin_token')})"
        )
    value = values[0] if isinstance(values[0], str) else values[0].decode("latin-1")
    if len(values) > 1 or not value.startswith(SCHEME) or not value[len(SCHEME) :].strip():
        raise Unauthenticated(
            f"the '{METADATA_KEY}' metadata must be one '{SCHEME}<token>' value"
        )
    return value[len(SCHEME) :].strip()


def configured_tokens(settings: Settings) -> tuple[str, ...]:
    """The admin tokens ``settings`` name, read now (files at start-up).

    Raises:
        ValueError: both settings set, the file unreadable or empty, or a token too short or
            not printable ASCII; the message names the setting, never the token.
    """
    if settings.admin_token and settings.admin_token_file:
        raise ValueError(
            f"set {env_name('admin_token')} or {env_name('admin_token_file')}, not both"
        )
    if settings.admin_token_file:
        path = Path(settings.admin_token_file).expanduser()
        try:
            lines = path.read_text(encoding="ascii").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{env_name('admin_token_file')}: cannot read {path}: {exc}") from exc
        tokens = tuple(t.strip() for t in lines if t.strip() and not t.startswith("#"))
        if not tokens:
            raise ValueError(f"{env_name('admin_token_file')}: {path} holds no token")
        where = env_name("admin_token_file")
    else:
        tokens = tuple(t.strip() for t in settings.admin_token.split(",") if t.strip())
        where = env_name("admin_token")
    for number, token in enumerate(tokens, 1):
        if len(token) < MIN_TOKEN_CHARS or not (token.isascii() and token.isprintable()):
            raise ValueError(
                f"{where}: token {number} is not {MIN_TOKEN_CHARS}+ printable ASCII characters "
                f"without spaces; make one with {MAKE_ONE}"
            )
        if " " in token or "," in token:
            raise ValueError(f"{where}: token {number} contains a space or a comma")
    return tokens


def guard_from_settings(settings: Settings) -> AdminGuard:
    """The featurizer's guard, from its settings (checked as ``configured_tokens`` says)."""
    return AdminGuard(configured_tokens(settings), settings.allow_unauthenticated_admin)


def client_token(settings: Settings) -> str:
    """The token a client sends: the first configured one, or '' when none is."""
    tokens = configured_tokens(settings)
    return tokens[0] if tokens else ""
