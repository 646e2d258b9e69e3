"""load_settings reads SEEDANCE_* (and ARK_API_KEY) from an environment mapping; nothing else reads it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from seedance_mcp.config import Settings, load_settings


def test_variables_are_read_and_typed() -> None:
    env = {
        "SEEDANCE_PROVIDER": "byteplus",
        "SEEDANCE_API_KEY": "sk-1",
        "SEEDANCE_POLL_INTERVAL": "2.5",
        "SEEDANCE_WAIT_SECONDS": "40",
        "SEEDANCE_ALLOWED_DIRS": os.pathsep.join(["/a", "/b"]),
        "SEEDANCE_OUTPUT_DIR": "/videos",
        "SEEDANCE_MODEL": "2.0",
        "UNRELATED": "x",
    }
    settings = load_settings(env)
    assert settings.provider == "byteplus"
    assert settings.key == "sk-1"
    assert (settings.poll_interval, settings.wait_seconds) == (2.5, 40.0)
    assert settings.allowed_dirs == (Path("/a"), Path("/b"))
    assert settings.output_dir == Path("/videos")
    assert settings.default_model == "2.0"


def test_a_reconcile_window_shorter_than_the_http_timeout_is_refused_at_start_up() -> None:
    """An empty look for a lost create proves "not created" only once the create's time-out has passed: a window
    below it would let a retry pay twice, so the entry point refuses it, naming both variables."""
    with pytest.raises(ValidationError) as refused:
        load_settings({"SEEDANCE_RECONCILE_WINDOW": "20", "SEEDANCE_HTTP_TIMEOUT": "60"})
    message = str(refused.value)
    assert "SEEDANCE_RECONCILE_WINDOW (20 s)" in message and "SEEDANCE_HTTP_TIMEOUT (60 s)" in message
    assert load_settings({"SEEDANCE_RECONCILE_WINDOW": "60", "SEEDANCE_HTTP_TIMEOUT": "60"}).reconcile_window == 60
    assert load_settings({"SEEDANCE_HTTP_TIMEOUT": "5"}).reconcile_window is None  # default: time-out + 30 s


def test_ark_api_key_is_a_fallback_and_empty_variables_count_as_unset() -> None:
    assert load_settings({"ARK_API_KEY": "ark-key"}).key == "ark-key"
    assert load_settings({"ARK_API_KEY": "ark-key", "SEEDANCE_API_KEY": "mine"}).key == "mine"
    settings = load_settings({"SEEDANCE_BASE_URL": "", "SEEDANCE_API_KEY": "  "})
    assert settings.base_url is None and settings.key is None


def test_bad_values_are_refused_with_the_field_name() -> None:
    with pytest.raises(ValidationError, match="poll_interval"):
        load_settings({"SEEDANCE_POLL_INTERVAL": "soon"})
    with pytest.raises(ValidationError, match="provider"):
        load_settings({"SEEDANCE_PROVIDER": "nonsense"})
    with pytest.raises(ValidationError, match="unknown Seedance model"):
        load_settings({"SEEDANCE_MODEL": "sora-2"})


def test_settings_built_directly_ignore_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEEDANCE_PROVIDER", "gptge")
    assert Settings().provider == "ark"


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="XDG_STATE_HOME is where Linux keeps state")
def test_the_default_state_dir_follows_xdg_state_home_as_the_entry_point_read_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "/from/the/process")
    assert load_settings({"XDG_STATE_HOME": "/srv/state"}).state_dir == Path("/srv/state/seedance-mcp")
    assert load_settings({}).state_dir == Path.home() / ".local" / "state" / "seedance-mcp"
    assert Settings().state_dir == Path.home() / ".local" / "state" / "seedance-mcp"


def test_the_api_key_never_shows_in_the_settings_repr() -> None:
    settings = Settings(api_key="sk-very-secret")  # pyright: ignore[reportArgumentType]  # pydantic coerces
    assert "sk-very-secret" not in repr(settings) and "sk-very-secret" not in str(settings.model_dump())
