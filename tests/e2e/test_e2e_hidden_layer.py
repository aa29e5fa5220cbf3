"""A catalog with a client-side hidden layer, end to end: real FHE over gRPC on its outputs.

The client pools its query, runs the catalog's ReLU layer in the clear and encrypts the
layer's outputs; the server scores them with the linear output layer, as for any catalog.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import numpy as np
import pytest

from hushtune.core.audio import SAMPLE_RATE
from hushtune.core.features import N_FEATURES
from hushtune.sdk import Client
from hushtune.services.featurizer.augment import add_noise
from hushtune.services.featurizer.builder import BuildResult, build_catalog
from hushtune.services.featurizer.update import update_catalog

pytestmark = pytest.mark.e2e

UNITS = 64
KNOWN = "amoebax-data__AngusBackground.ogg"
LEFT_OUT = "seahorse-adventures__8.ogg"


@pytest.fixture(scope="module", params=["concrete", "ckks"])
def hidden_catalog(request, e2e_stack) -> BuildResult:
    """A version of the demo catalog with a 64-unit hidden layer, not made current."""
    return build_catalog(
        e2e_stack.redis, e2e_stack.catalog_dir, exclude=[LEFT_OUT], make_current=False,
        engine=request.param, hidden_units=UNITS,
    )


@pytest.fixture(scope="module")
def hidden_client(e2e_stack, hidden_catalog, tmp_path_factory) -> Iterator[Client]:
    with Client(
        e2e_stack.inference, e2e_stack.keystore, key_dir=tmp_path_factory.mktemp("keys"),
        catalog_version=hidden_catalog.catalog_version,
    ) as sdk:
        yield sdk


def test_the_spec_carries_the_layer_the_client_runs(hidden_client) -> None:
    spec = hidden_client.model_spec()
    assert spec.hidden is not None
    assert spec.hidden.weights.shape == (N_FEATURES, UNITS) and spec.encrypted_size == UNITS
    encoded = spec.encode(np.ones(N_FEATURES))
    assert encoded.shape == (UNITS,) and np.all(encoded >= 0), encoded


@pytest.mark.parametrize("offset", [3.0, 15.0])
def test_a_noisy_catalog_song_is_identified_through_the_layer(
    e2e_stack, hidden_catalog, hidden_client, offset
) -> None:
    rng = np.random.default_rng(int(offset))
    query = add_noise(e2e_stack.excerpt(KNOWN, offset), "pink", 10.0, rng)
    answer = hidden_client.identify(query, sr=SAMPLE_RATE)
    assert answer.catalog_version == hidden_catalog.catalog_version
    # ranked first; whether the margin clears a 12-song catalog's threshold is not the point
    assert answer.candidates[0].song.song_id == e2e_stack.song_id(KNOWN), answer.as_dict()


def test_a_catalog_with_a_hidden_layer_grows_under_the_same_layer(
    e2e_stack, hidden_catalog, hidden_client, tmp_path
) -> None:
    """``hushtune update`` adds a song under the frozen layer: the new version ships the
    same layer, knows one song more, and still identifies the old songs over FHE."""
    shutil.copy(e2e_stack.catalog_dir / LEFT_OUT, tmp_path / LEFT_OUT)
    grown = update_catalog(e2e_stack.redis, base_version=hidden_catalog.catalog_version,
                           add_dir=tmp_path, make_current=False)
    assert grown.songs == hidden_catalog.songs + 1 and grown.base_version == (
        hidden_catalog.catalog_version)
    before = hidden_client.model_spec()
    with Client(
        e2e_stack.inference, e2e_stack.keystore, key_dir=tmp_path / "keys",
        catalog_version=grown.catalog_version,
    ) as sdk:
        after = sdk.model_spec()
        assert after.hidden is not None and before.hidden is not None
        np.testing.assert_array_equal(after.hidden.weights, before.hidden.weights)
        assert after.songs[-1].song_id == e2e_stack.song_id(LEFT_OUT)
        rng = np.random.default_rng(5)
        query = add_noise(e2e_stack.excerpt(KNOWN, 8.0), "pink", 10.0, rng)
        answer = sdk.identify(query, sr=SAMPLE_RATE)
    assert answer.candidates[0].song.song_id == e2e_stack.song_id(KNOWN), answer.as_dict()
