"""Unit tests of the server's pure parts: settings structuring and text edits."""

from __future__ import annotations

import pytest

from lsp_server.config import Settings, changed_keys, load_settings
from lsp_server.features.edits import apply_replacements, diff_replacements


def test_settings_defaults_nested_dotted_and_wrapped():
    assert load_settings(None) == (Settings(), [])
    nested, problems = load_settings({"model": {"path": "none", "gpuLayers": -1}, "budget": 3, "cache": {"dir": "/c"}})
    dotted, _ = load_settings({"passpilot.model.path": "none", "model.gpuLayers": -1, "budget": 3, "cache.dir": "/c"})
    wrapped, _ = load_settings({"passpilot": {"model": {"path": "none", "gpuLayers": -1}, "budget": 3, "cache": {"dir": "/c"}}})
    assert problems == [] and nested == dotted == wrapped
    assert (nested.model.path, nested.model.gpu_layers, nested.budget, nested.cache.dir) == ("none", -1, 3, "/c")
    assert nested.engine_settings().model_path == "none" and nested.engine_settings().gpu_layers == -1
    assert nested.to_json()["model"]["gpuLayers"] == -1


def test_later_objects_win_key_by_key_and_null_keeps():
    settings, _ = load_settings({"budget": 3, "cache": {"dir": "/c"}}, {"budget": 0, "cache": {"dir": None}, "server": {"command": ["x"]}})
    assert settings.budget == 0 and settings.cache.dir == "/c"
    assert changed_keys(Settings(), settings) == {"budget", "cache.dir"}


@pytest.mark.parametrize(
    ("raw", "key", "expect", "default"),
    [
        ({"budget": -1}, "passpilot.budget", "an integer >= 0", "10"),
        ({"budget": "lots"}, "passpilot.budget", "an integer >= 0", "10"),
        ({"budget": True}, "passpilot.budget", "an integer >= 0", "10"),
        ({"model": {"samples": 0}}, "passpilot.model.samples", "an integer >= 1", "4"),
        ({"model": {"gpuLayers": -2}}, "passpilot.model.gpuLayers", "an integer >= -1", "0"),
        ({"model": {"profile": "gpt"}}, "passpilot.model.profile", '"passpilot" or "llm-compiler-ftd"', '"passpilot"'),
        ({"opt": {"path": 7}}, "passpilot.opt.path", "a string", '""'),
        ({"cache": "/tmp"}, "passpilot.cache", "an object", '{"dir": ""}'),
    ],
)
def test_a_bad_value_names_its_key_and_falls_back_to_the_default(raw, key, expect, default):
    settings, problems = load_settings({"budget": 2, **raw} if "budget" not in raw else raw)
    assert len(problems) == 1
    message = problems[0].message
    assert f"`{key}`" in message and expect in message and message.endswith(f"using the default {default}.")
    if key != "passpilot.budget":
        assert settings.budget == 2  # the other keys are kept
        assert settings == Settings(budget=2)  # and the bad one has its default
    else:
        assert settings == Settings()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("a\nb\nc\n", "a\nB\nc\n"),
        ("a\nb\nc", "a\nb\nc\nd"),
        ("a\nb\nc\n", "x\na\nc\n\nappended\n"),
        ("one", "two\nthree"),
        ("a\nb\n", ""),
        ("", "x\n"),
    ],
)
def test_diff_replacements_rebuild_the_new_text(old, new):
    assert apply_replacements(old, tuple(diff_replacements(old, new))) == new
