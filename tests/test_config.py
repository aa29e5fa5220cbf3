"""Tests of hushtune.services.common.config and of the page generated from it
(docs/CONFIGURATION.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from hushtune.services.common.config import Settings, add_flags, load_settings
from tests.scripts import load_script

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024


def _parse_flags(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_flags(parser)
    return parser.parse_args(argv)


def test_configuration_doc_is_up_to_date() -> None:
    gen_config_doc = load_script("gen_config_doc")
    committed = gen_config_doc.DOC_PATH.read_text(encoding="utf-8")
    assert (
        committed == gen_config_doc.render()
    ), "docs/CONFIGURATION.md is stale: run python scripts/gen_config_doc.py"


def test_defaults_without_flags_or_environment() -> None:
    assert load_settings(_parse_flags(), environ={}) == Settings()


def test_flag_beats_environment_beats_default() -> None:
    args = _parse_flags("--keystore-port", "6000")
    environ = {"HUSHTUNE_KEYSTORE_PORT": "7000", "HUSHTUNE_INFERENCE_PORT": "7001"}
    settings = load_settings(args, environ=environ)
    assert settings.keystore_port == 6000
    assert settings.inference_port == 7001
    assert settings.featurizer_port == Settings().featurizer_port


def test_values_are_parsed_to_the_setting_type() -> None:
    environ = {"HUSHTUNE_KEY_CACHE_SECONDS": "2.5", "HUSHTUNE_REFLECTION": "off"}
    settings = load_settings(_parse_flags("--server-threads", "3"), environ=environ)
    assert settings.server_threads == 3
    assert settings.key_cache_seconds == 2.5
    assert settings.reflection is False


def test_bad_int_environment_value_names_the_variable() -> None:
    with pytest.raises(ValueError, match="HUSHTUNE_SERVER_THREADS"):
        load_settings(environ={"HUSHTUNE_SERVER_THREADS": "eight"})


def test_bad_bool_environment_value_names_the_variable() -> None:
    with pytest.raises(ValueError, match="HUSHTUNE_REFLECTION"):
        load_settings(environ={"HUSHTUNE_REFLECTION": "maybe"})


def test_redis_url_falls_back_to_plain_redis_url() -> None:
    assert load_settings(environ={"REDIS_URL": "redis://cache:6379/2"}).redis_url == (
        "redis://cache:6379/2"
    )


def test_hushtune_redis_url_beats_plain_redis_url() -> None:
    environ = {"REDIS_URL": "redis://other:6379/0", "HUSHTUNE_REDIS_URL": "redis://mine:6379/1"}
    assert load_settings(environ=environ).redis_url == "redis://mine:6379/1"


@pytest.mark.parametrize("port", [-1, 65536])
def test_validate_rejects_a_bad_port(port: int) -> None:
    with pytest.raises(ValueError, match="HUSHTUNE_INFERENCE_PORT"):
        load_settings(environ={"HUSHTUNE_INFERENCE_PORT": str(port)})


@pytest.mark.parametrize("chunk_bytes", [4 * MIB, 5 * MIB])
def test_validate_rejects_chunks_not_below_the_message_limit(chunk_bytes: int) -> None:
    with pytest.raises(ValueError, match="HUSHTUNE_CHUNK_BYTES"):
        load_settings(environ={}, chunk_bytes=chunk_bytes, max_message_bytes=4 * MIB)
