"""The language server's settings: typed, frozen, and forgiving of bad values.

`initializationOptions` and `workspace/configuration` (section `passpilot`) carry the same object (see
docs/design.md). Nested (`{"model": {"path": ...}}`) and dotted (`{"model.path": ...}`) keys are both
accepted, as is the object wrapped in `{"passpilot": {...}}`. A value of the wrong type or out of range
does not reject the whole object: that one key falls back to its default and a `SettingProblem` says why.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import cattrs
from attrs import validators as v

from .compiler import BACKEND_CHOICES
from .engine import EngineSettings, defaults
from .engine.deep import DeepOptions

SECTION = "passpilot"
PROFILES = ("passpilot", "llm-compiler-ftd")
CLIENT_ONLY_KEYS = frozenset({"server", "trace"})  # VS Code settings the server does not use


def _key(name: str, expect: str) -> dict[str, str]:
    return {"key": name, "expect": expect}


@attrs.frozen
class OptSettings:
    path: str = attrs.field(default="", metadata=_key("path", "a string (path of the opt executable)"))


@attrs.frozen
class ModelSettings:
    path: str = attrs.field(default=defaults.MODEL_PATH, metadata=_key("path", 'a string (GGUF file, "" or "none")'))
    profile: str = attrs.field(
        default=defaults.MODEL_PROFILE, validator=v.in_(PROFILES), metadata=_key("profile", " or ".join(f'"{p}"' for p in PROFILES))
    )
    samples: int = attrs.field(default=defaults.MODEL_SAMPLES, validator=v.ge(1), metadata=_key("samples", "an integer >= 1"))
    gpu_layers: int = attrs.field(default=defaults.GPU_LAYERS, validator=v.ge(-1), metadata=_key("gpuLayers", "an integer >= -1"))
    threads: int = attrs.field(default=defaults.MODEL_THREADS, validator=v.ge(0), metadata=_key("threads", "an integer >= 0 (0: automatic)"))


@attrs.frozen
class CacheSettings:
    dir: str = attrs.field(default="", metadata=_key("dir", "a string (folder of the result cache)"))


@attrs.frozen
class CompilerSettings:
    backend: str = attrs.field(
        default=defaults.BACKEND, validator=v.in_(BACKEND_CHOICES), metadata=_key("backend", " or ".join(f'"{c}"' for c in BACKEND_CHOICES))
    )


@attrs.frozen
class DeepSearchSettings:
    seconds: int = attrs.field(
        default=int(DeepOptions.seconds),
        validator=[v.ge(1), v.le(3600)],
        metadata=_key("seconds", "an integer from 1 to 3600 (seconds per function)"),
    )


@attrs.frozen
class Settings:
    opt: OptSettings = attrs.field(factory=OptSettings, metadata=_key("opt", "an object"))
    model: ModelSettings = attrs.field(factory=ModelSettings, metadata=_key("model", "an object"))
    budget: int = attrs.field(default=defaults.BUDGET, validator=v.ge(0), metadata=_key("budget", "an integer >= 0"))
    cache: CacheSettings = attrs.field(factory=CacheSettings, metadata=_key("cache", "an object"))
    compiler: CompilerSettings = attrs.field(factory=CompilerSettings, metadata=_key("compiler", "an object"))
    deep_search: DeepSearchSettings = attrs.field(factory=DeepSearchSettings, metadata=_key("deepSearch", "an object"))

    def engine_settings(self) -> EngineSettings:
        """What the engine is assembled from; a change here means re-assembling (budget is not in it)."""
        return EngineSettings(
            opt_path=self.opt.path,
            model_path=self.model.path,
            model_profile=self.model.profile,
            samples=self.model.samples,
            gpu_layers=self.model.gpu_layers,
            model_threads=self.model.threads,
            cache_dir=self.cache.dir,
            use_cache=True,
            backend=self.compiler.backend,
        )

    def to_json(self) -> dict[str, Any]:
        return converter.unstructure(self)


@attrs.frozen
class SettingProblem:
    key: str  # dotted, with the `passpilot.` prefix, e.g. `passpilot.model.samples`
    problem: str
    default: Any

    @property
    def message(self) -> str:
        return f"PassPilot setting `{self.key}`: {self.problem}; using the default {json.dumps(self.default)}."


def _strict_int(value: Any, _type: type) -> int:
    if isinstance(value, bool):
        raise TypeError("a boolean is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise TypeError(f"{value!r} is not an integer")


def _strict_str(value: Any, _type: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=False)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(str, _strict_str)
    for cls in SETTINGS_CLASSES:
        renames = {
            field.name: cattrs.gen.override(rename=field.metadata["key"])
            for field in attrs.fields(cls)
            if field.metadata.get("key", field.name) != field.name
        }
        conv.register_structure_hook(cls, cattrs.gen.make_dict_structure_fn(cls, conv, **renames))
        conv.register_unstructure_hook(cls, cattrs.gen.make_dict_unstructure_fn(cls, conv, **renames))
    return conv


SETTINGS_CLASSES = (OptSettings, ModelSettings, CacheSettings, CompilerSettings, DeepSearchSettings, Settings)
for _cls in SETTINGS_CLASSES:
    attrs.resolve_types(_cls)
converter = _make_converter()


def normalize(raw: Any) -> dict[str, Any]:
    """One settings object as nested dicts: unwrap `{"passpilot": {...}}`, expand dotted keys."""
    if not isinstance(raw, Mapping):
        return {}
    if set(raw) == {SECTION} and isinstance(raw[SECTION], Mapping):
        raw = raw[SECTION]
    nested: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            continue
        if key.startswith(SECTION + "."):
            key = key[len(SECTION) + 1 :]
        parts = key.split(".")
        target = nested
        for part in parts[:-1]:
            existing = target.get(part)
            if not isinstance(existing, dict):
                existing = {}
                target[part] = existing
            target = existing
        if isinstance(value, Mapping) and isinstance(target.get(parts[-1]), dict):
            target[parts[-1]] = merge(target[parts[-1]], normalize(value))
        else:
            target[parts[-1]] = normalize(value) if isinstance(value, Mapping) else value
    return nested


def merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: keys of `overlay` win; `null` in `overlay` leaves the base value."""
    merged = dict(base)
    for key, value in overlay.items():
        if value is None:
            continue
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(*objects: Any) -> tuple[Settings, list[SettingProblem]]:
    """Settings from raw JSON objects (later ones win), with one problem per bad key."""
    raw: dict[str, Any] = {}
    for obj in objects:
        raw = merge(raw, normalize(obj))
    problems: list[SettingProblem] = []
    clean = _clean(Settings, raw, SECTION, problems)
    return converter.structure(clean, Settings), problems


def _clean(cls: type, raw: Mapping[str, Any], prefix: str, problems: list[SettingProblem]) -> dict[str, Any]:
    """Keep the valid values of `raw` for `cls` (JSON keys); report and drop the others."""
    clean: dict[str, Any] = {}
    for field in attrs.fields(cls):
        key = field.metadata.get("key", field.name)
        if key not in raw or raw[key] is None:
            continue
        value = raw[key]
        dotted = f"{prefix}.{key}"
        if attrs.has(field.type):
            if isinstance(value, Mapping):
                clean[key] = _clean(field.type, value, dotted, problems)
            else:
                default = converter.unstructure(field.type())
                problems.append(SettingProblem(dotted, f"expected an object, got {_show(value)}", default))
            continue
        try:
            typed = converter.structure(value, field.type)
            if field.validator is not None:
                field.validator(None, field, typed)
        except (TypeError, ValueError, cattrs.BaseValidationError):
            problems.append(SettingProblem(dotted, f"expected {field.metadata['expect']}, got {_show(value)}", field.default))
            continue
        clean[key] = typed
    return clean


def _show(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def changed_keys(old: Settings, new: Settings) -> set[str]:
    """Dotted JSON keys whose values differ."""
    return {key for key, value in _flatten(new.to_json()).items() if _flatten(old.to_json()).get(key) != value}


def _flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def describe(settings: Settings) -> Iterable[str]:
    for key, value in sorted(_flatten(settings.to_json()).items()):
        yield f"{SECTION}.{key} = {json.dumps(value)}"
