"""Promote and roll back with real clients: a version built with --no-current goes live, then
the previous one comes back, and a client following the current version moves both times."""

from __future__ import annotations

from pathlib import Path

import pytest

from hushtune.cli.remote import build_remote, promote_remote, rollback_remote
from hushtune.core.audio import SAMPLE_RATE
from hushtune.sdk import Client
from hushtune.services.common import registry
from tests.admin_token import TOKEN
from tests.e2e.conftest import LEFT_OUT, BuiltStack

pytestmark = pytest.mark.e2e

KNOWN = "amoebax-data__menu.ogg"
DROPPED = "amoebax-data__K.QuitaBackground.ogg"
"""Left out of the second version too, so that the two versions differ in their songs."""


def test_a_client_follows_a_promotion_and_a_rollback(e2e_stack: BuiltStack, tmp_path: Path) -> None:
    original = str(e2e_stack.summary["catalog_version"])
    assert registry.current_version(e2e_stack.redis) == original
    second = build_remote(
        e2e_stack.featurizer, str(e2e_stack.catalog_dir), [LEFT_OUT, DROPPED], False,
        lambda *_: None, admin_token=TOKEN,
    )  # as `hushtune build --no-current` does
    version = str(second["catalog_version"])
    assert second["current"] is False and registry.current_version(e2e_stack.redis) == original
    clip = e2e_stack.excerpt(KNOWN, 10.0)
    expected = e2e_stack.song_id(KNOWN)
    try:
        with Client(e2e_stack.inference, e2e_stack.keystore, key_dir=tmp_path / "keys",
                    spec_refresh_seconds=0) as client:
            before = client.identify(clip, sr=SAMPLE_RATE)
            assert before.catalog_version == original

            promoted = promote_remote(e2e_stack.featurizer, version, admin_token=TOKEN)
            assert promoted["catalog_version"] == version
            assert promoted["previous_version"] == original
            during = client.identify(clip, sr=SAMPLE_RATE)
            assert during.catalog_version == version, "the client stayed on the old version"
            assert during.match is not None and during.match.song_id == expected, during.as_dict()

            rolled = rollback_remote(e2e_stack.featurizer, admin_token=TOKEN)
            assert (rolled["catalog_version"], rolled["rolled_back_version"]) == (original, version)
            after = client.identify(clip, sr=SAMPLE_RATE)
            assert after.catalog_version == original, "the client stayed on the promoted version"
            assert after.match is not None and after.match.song_id == expected, after.as_dict()
    finally:  # the session's other tests expect the demo catalog current
        if registry.current_version(e2e_stack.redis) != original:
            registry.set_current(e2e_stack.redis, original)
