"""The admin guard and its settings: plain logic, no server (the featurizer's gRPC tests cover
the wire: tests/featurizer/test_featurizer_service.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hushtune.services.common.admin_auth import AdminGuard, client_token, configured_tokens
from hushtune.services.common.config import load_settings
from hushtune.services.common.errors import PermissionDenied, Unauthenticated

OLD, NEW = "old-token-0123456789abcdef", "new-token-0123456789abcdef"


def bearer(token: str) -> list[tuple[str, str]]:
    return [("x-request-id", "r1"), ("authorization", f"Bearer {token}")]


def test_during_a_rotation_both_tokens_work_and_others_do_not() -> None:
    guard = AdminGuard((NEW, OLD))
    guard.check(bearer(OLD))
    guard.check(bearer(NEW))
    with pytest.raises(PermissionDenied, match="not one this featurizer accepts"):
        guard.check(bearer(OLD[:-1] + "X"))


@pytest.mark.parametrize(
    "metadata",
    [
        [],
        [("x-request-id", "r1")],
        [("authorization", OLD)],
        [("authorization", "Basic " + OLD)],
        [("authorization", "Bearer ")],
        [("authorization", f"Bearer {OLD}"), ("authorization", f"Bearer {NEW}")],
    ],
    ids=["none", "other metadata", "no scheme", "basic", "empty", "two values"],
)
def test_a_missing_or_malformed_token_is_unauthenticated(
    metadata: list[tuple[str, str]],
) -> None:
    with pytest.raises(Unauthenticated) as raised:
        AdminGuard((OLD,)).check(metadata)
    assert OLD not in str(raised.value), "the token came back in the error"


def test_no_token_configured_refuses_unless_allowed() -> None:
    with pytest.raises(PermissionDenied, match="HUSHTUNE_ADMIN_TOKEN"):
        AdminGuard().check(bearer(OLD))
    AdminGuard(allow_unauthenticated=True).check([])
    with pytest.raises(Unauthenticated):  # a configured token wins over the allowance
        AdminGuard((OLD,), allow_unauthenticated=True).check([])


def test_tokens_from_the_setting_and_from_a_file(tmp_path: Path) -> None:
    settings = load_settings(environ={"HUSHTUNE_ADMIN_TOKEN": f"{NEW}, {OLD}"})
    assert configured_tokens(settings) == (NEW, OLD)
    assert client_token(settings) == NEW, "a client sends the first token"
    token_file = tmp_path / "admin-tokens"
    token_file.write_text(f"# rotated on Friday\n{NEW}\n\n{OLD}\n")
    from_file = load_settings(environ={"HUSHTUNE_ADMIN_TOKEN_FILE": str(token_file)})
    assert configured_tokens(from_file) == (NEW, OLD)
    assert client_token(load_settings(environ={})) == ""
    assert NEW not in repr(settings), "the token shows in the settings' repr (and in logs)"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"HUSHTUNE_ADMIN_TOKEN": "short"}, "token 1 is not 16\\+ printable"),
        ({"HUSHTUNE_ADMIN_TOKEN": f"{OLD},tiny"}, "token 2 is not 16\\+"),
        ({"HUSHTUNE_ADMIN_TOKEN": OLD, "HUSHTUNE_ADMIN_TOKEN_FILE": "/x"}, "not both"),
        ({"HUSHTUNE_ADMIN_TOKEN_FILE": "/no/such/token-file"}, "cannot read /no/such/token-file"),
    ],
)
def test_unusable_token_settings_fail_naming_the_setting(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        configured_tokens(load_settings(environ=environ))
    assert "HUSHTUNE_ADMIN_TOKEN" in str(raised.value)
    assert OLD not in str(raised.value), "the token came back in the error"


def test_an_empty_token_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "tokens"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ValueError, match="holds no token"):
        configured_tokens(load_settings(environ={"HUSHTUNE_ADMIN_TOKEN_FILE": str(empty)}))
