"""Unit tests of the server's pure parts: settings structuring and text edits."""

from __future__ import annotations

import pytest

from lsp_server.config import Settings, changed_keys, load_settings
from lsp_server.session.edits import apply_replacements, diff_replacements


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


def _hover_server(with_model: bool):
    from types import SimpleNamespace

    model = {"path": "m.gguf", "profile": "passpilot", "identity": "m"} if with_model else None
    return SimpleNamespace(engine=SimpleNamespace(model_info=lambda: model), settings=SimpleNamespace(budget=10))


def _hover_result(model_passes: str, best_passes: str):
    from lsp_server.engine import FunctionResult, Measurement
    from lsp_server.ir import StandaloneFunction

    function = StandaloneFunction(name="f", token="@f", text="", linkage=None, optnone_removed=False)
    oz = Measurement("default<Oz>", "oz", 14)
    model = Measurement(model_passes, "model", 15 if model_passes != best_passes else 12, predicted_before=27, predicted_after=11)
    best = model if model_passes == best_passes else Measurement(best_passes, "coreset", 12)
    return FunctionResult(function, 29, oz, best, (oz, model) if best is model else (oz, model, best))  # type: ignore[arg-type]


def test_hover_pairs_each_prediction_with_the_count_of_the_same_list():
    """The model's predicted count sits beside the measured count of the model's own list, never beside
    the count of another list that won (issue 11, problem 5)."""
    from lsp_server.features.hover import _figures

    lost = "\n".join(_figures(_hover_server(True), _hover_result("instcombine", "sroa,gvn"), True))
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in lost.split("\n") if line.startswith("| ")}
    assert rows["best"] == ["12 (−14.3% vs -Oz)", ""]  # the winner is the coreset's list: no prediction beside it
    assert rows["model's list"] == ["15", "11"]  # the model's own list: measured 15, predicted 11
    assert rows["original"] == ["29", "27"]

    won = "\n".join(_figures(_hover_server(True), _hover_result("sroa,gvn", "sroa,gvn"), True))
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in won.split("\n") if line.startswith("| ")}
    assert rows["best"] == ["12 (−14.3% vs -Oz)", "11"] and "model's list" not in rows


def test_hover_says_which_edit_of_which_list_won():
    import dataclasses

    from lsp_server.engine import Candidate, Measurement
    from lsp_server.engine.refine import Edit, RefineSource
    from lsp_server.features.hover import _figures

    result = _hover_result("instcombine", "sroa,gvn")
    edit = next(RefineSource([Edit("twice")]).refinements([Measurement("module(sroa,gvn)", "coreset", 12)]))
    assert isinstance(edit, Candidate)
    winner = Measurement(edit.passes, edit.source, 10, note=edit.note)
    refined = dataclasses.replace(result, best=winner, measurements=(*result.measurements, winner))
    text = "\n".join(_figures(_hover_server(False), refined, True))
    assert "best pass list (source: refine): `module(sroa,gvn,sroa,gvn)`; the best list run twice (coreset)" in text
