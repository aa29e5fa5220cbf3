"""The hidden layer a catalog may ship to clients: applied as relu(x A + c), carried in the
model spec, and refused when it does not fit the features."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hushtune.core.errors import CatalogError
from hushtune.core.features import N_FEATURES
from hushtune.core.hidden_layer import HiddenLayer
from hushtune.core.model_spec import ModelSpec
from tests.sdk.test_sdk_model_spec import make_spec


def layer(inputs: int = N_FEATURES, units: int = 8) -> HiddenLayer:
    rng = np.random.default_rng(0)
    return HiddenLayer(rng.standard_normal((inputs, units)).astype(np.float32),
                       rng.standard_normal(units).astype(np.float32))


def test_the_layer_is_a_relu_of_an_affine_map() -> None:
    hidden = layer()
    x = np.random.default_rng(1).standard_normal((3, N_FEATURES))
    expected = np.maximum(x @ hidden.weights.astype(np.float64) + hidden.bias, 0.0)
    np.testing.assert_allclose(hidden.apply(x), expected, rtol=1e-12)
    np.testing.assert_allclose(hidden.apply(x[0]), expected[0], rtol=1e-12)
    assert hidden.units == 8


def test_a_spec_with_a_layer_round_trips_and_encodes_through_it() -> None:
    spec = dataclasses.replace(make_spec(), hidden=layer())
    back = ModelSpec.from_bytes(spec.to_bytes())
    assert back.hidden is not None and back.encrypted_size == 8
    np.testing.assert_array_equal(back.hidden.weights, spec.hidden.weights)
    x = np.linspace(-1, 1, N_FEATURES)
    np.testing.assert_allclose(back.encode(x), spec.hidden.apply(x))
    plain = ModelSpec.from_bytes(make_spec().to_bytes())
    assert plain.hidden is None and plain.encrypted_size == N_FEATURES
    np.testing.assert_array_equal(plain.encode(x), x)


@pytest.mark.parametrize(
    ("weights", "bias", "message"),
    [
        (np.zeros((N_FEATURES - 1, 4)), np.zeros(4), "must be"),
        (np.zeros((N_FEATURES, 4)), np.zeros(5), "must be"),
        (np.full((N_FEATURES, 4), np.nan), np.zeros(4), "non-finite"),
    ],
)
def test_a_layer_that_does_not_fit_is_refused(weights, bias, message) -> None:
    bad = HiddenLayer(weights.astype(np.float32), bias.astype(np.float32))
    spec = dataclasses.replace(make_spec(), hidden=bad)
    with pytest.raises(CatalogError, match=message):
        ModelSpec.from_bytes(spec.to_bytes())


def test_an_unreadable_layer_is_refused() -> None:
    with pytest.raises(CatalogError, match="unreadable"):
        HiddenLayer.from_bytes(b"not an npz archive", N_FEATURES)
