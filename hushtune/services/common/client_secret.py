"""Per-client secrets: the bearer proof that a caller owns the evaluation keys it names.

The keystore issues a fresh secret with every upload and keeps only its sha256 digest; the
keystore and the inference workers' key cache check a presented secret against that digest
here, in one place. The secret is random (256 bits), so a plain sha256 digest is enough: there
is nothing to guess that a slow hash would protect. Neither the secret nor its digest is ever
logged, and no error message says whether a key id exists under another secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from hushtune.services.common.errors import InvalidInput, PermissionDenied, Unauthenticated

SECRET_PREFIX = "s_"
SECRET_TOKEN_BYTES = 32
"""256 random bits, encoded by ``token_urlsafe`` as 43 characters."""
MAX_SECRET_CHARS = 128
_SECRET_CHARS = re.compile(r"[A-Za-z0-9_-]+")


def new_secret() -> str:
    """A fresh random client secret, from the operating system's CSPRNG."""
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_TOKEN_BYTES)


def digest(secret: str) -> str:
    """Lower-case hex sha256 of a secret: what is stored and cached instead of the secret."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def check_format(secret: str) -> None:
    """Refuse a missing or malformed secret before any lookup, without echoing it.

    Raises:
        Unauthenticated: no secret was sent.
        InvalidInput: the secret is too long or has characters a secret never has.
    """
    if not secret:
        raise Unauthenticated(
            "client_secret is missing: send the secret UploadKeys returned with the key id"
        )
    if len(secret) > MAX_SECRET_CHARS or not _SECRET_CHARS.fullmatch(secret):
        raise InvalidInput(
            f"client_secret is malformed: at most {MAX_SECRET_CHARS} letters, digits, "
            "'-' or '_'"
        )


def verify(key_id: str, secret: str, stored_digest: str | None) -> None:
    """Check ``secret`` against the digest stored with ``key_id`` (None: nothing stored).

    Unknown key ids and wrong secrets get the same answer, so that a caller cannot learn
    whether another client's key id exists.

    Raises:
        Unauthenticated, InvalidInput: see ``check_format``.
        PermissionDenied: no keys under ``key_id`` open with this secret.
    """
    check_format(secret)
    presented = digest(secret)
    expected = stored_digest if stored_digest is not None else "0" * len(presented)
    matches = hmac.compare_digest(presented.encode("ascii"), expected.encode("ascii"))
    if stored_digest is None or not matches:
        raise denied(key_id)


def denied(key_id: str) -> PermissionDenied:
    """The one refusal for an unknown key id or a wrong secret."""
    return PermissionDenied(
        f"no evaluation keys under key id {key_id} open with this client secret (never "
        "uploaded, expired, deleted, or the secret is wrong); upload the keys again"
    )
