"""The pass vocabulary of an `opt`, checking pass lists against it, and splitting them: PassPilot's one
pass-pipeline grammar (the model's answers, the random search and `training/` all read lists through it).

A pass list may come from a model, a file or a setting; it reaches `opt` only as the value of one
`-passes=` argument after it parsed here into known transformation passes. Printers, verifiers,
instrumentation, passes that read or write files and passes that rename or internalize symbols are not
in the vocabulary, so a list can neither smuggle a flag nor make `opt` touch the file system.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from . import binary_facts
from .locate import OptNotFound, OptTool

MAX_PASSES = 256
MAX_DEPTH = 4
PIPELINE_LEVELS = ("O0", "O1", "O2", "O3", "Os", "Oz")
ADAPTORS = ("module", "cgscc", "function", "loop", "loop-mssa")
ADAPTOR_OPTIONS = {"function": frozenset({"eager-inv"})}  # `function<eager-inv>(...)`; opt takes no others
FIXPOINT_CHECK_ON, FIXPOINT_CHECK_OFF = "verify-fixpoint", "no-verify-fixpoint"  # InstCombine's (see _without_fixpoint_check)
_KEPT_SECTIONS = ("Module passes", "CGSCC passes", "Function passes", "LoopNest passes", "Loop passes")

# Not transformations we may run on a user's code: observers, instrumentation, I/O, symbol renaming.
_EXCLUDED = re.compile(
    r"""^(
      print.* | .*-print(er)?s? | .*printer.* | dot-.* | view-.* | verify.* | .*-verify | lint
    | debugify | check-debugify | .*-debugify | declare-to-assign | assign-guid
    | (.*-)?[a-z]*san(-.*)? | sancov.* | sanmd.* | memprof.* | pgo-.* | .*instrprof.* | instrorderfile
    | .*gcov.* | ctx-.* | pseudo-probe.* | sample-profile | .*profil.* | cg-profile | alloc-token
    | function-import | thinlto.* | lto.* | fatlto-pre-link | embed-bitcode | extract-blocks | internalize
    | strip.* | metarenamer | name-anon-globals | rewrite-symbols | normalize | trigger-.*
    | cross-dso-cfi | lower-?type-?tests | wholeprogramdevirt | bounds-checking | cfguard | ee-instrument
    | post-inline-ee-instrument | kcfi | memtag.* | forceattrs | noinline-nonprevailing | dxil-.* | hipstdpar-.*
    | .*-instrument.* | instrument.* | nvptx-.* | amdgpu-.* | spirv-.* | bpf-.* | wasm-.* | x86-.* | aarch64-.*
    | win-eh-prepare | aa-eval | pa-eval | instcount | func-properties-stats | count-visits | kernel-info
    | helloworld | prof-inject | safe-stack | stack-protector | structurizecfg | require | invalidate | drop-unnecessary-assumes | expand-ir-insts
    )$""",
    re.VERBOSE,
)


class PassListError(ValueError):
    """A pass list that will not be given to `opt`; the message says why."""


@dataclass(frozen=True)
class PassSpec:
    name: str
    options: frozenset[str]  # accepted flag parameters; `key=` entries accept a value
    requires_params: bool = False


@dataclass(frozen=True)
class PassVocabulary:
    passes: dict[str, PassSpec]
    opt_version: str

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.passes)

    def check(self, pipeline: str) -> str:
        """Parse a pass list and return it normalized, or raise PassListError."""
        text = pipeline.strip()
        if text.startswith("-passes="):
            text = text[len("-passes=") :]
        text = text.strip().strip("'\"")
        if not text:
            raise PassListError("the pass list is empty")
        if text.startswith("-"):
            raise PassListError(f"`{text.split()[0]}` is a flag, not a pass; only pass names are accepted")
        bad = re.search(r"[^A-Za-z0-9_.;=<>(),\-\s]", text)
        if bad:
            raise PassListError(f"character {bad.group()!r} cannot appear in a pass list")
        parser = _Parser(text.replace(" ", "").replace("\n", "").replace("\t", ""), self)
        return parser.parse()


class _Parser:
    def __init__(self, text: str, vocabulary: PassVocabulary):
        self.text = text
        self.position = 0
        self.vocabulary = vocabulary
        self.count = 0

    def parse(self) -> str:
        result = self.pipeline(depth=0)
        if self.position != len(self.text):
            raise PassListError(f"unexpected {self.text[self.position]!r} at position {self.position + 1}")
        return result

    def pipeline(self, depth: int) -> str:
        if depth > MAX_DEPTH:
            raise PassListError(f"pass list nested deeper than {MAX_DEPTH} levels")
        elements = [self.element(depth)]
        while self.peek() == ",":
            self.position += 1
            elements.append(self.element(depth))
        return ",".join(elements)

    def element(self, depth: int) -> str:
        match = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*").match(self.text, self.position)
        if match is None:
            raise PassListError(f"expected a pass name at position {self.position + 1}")
        name = match.group()
        self.position = match.end()
        params = None
        if self.peek() == "<":
            close = self.text.find(">", self.position)
            if close < 0:
                raise PassListError(f"unclosed `<` after {name}")
            params = self.text[self.position + 1 : close]
            self.position = close + 1
        if self.peek() == "(":
            if name not in ADAPTORS:
                raise PassListError(f"`{name}` cannot contain nested passes")
            head = name
            if params is not None:
                allowed = ADAPTOR_OPTIONS.get(name, frozenset())
                if not all(item in allowed for item in params.split(";")):
                    raise PassListError(f"`{name}<{params}>` is not an adaptor opt accepts")
                head = f"{name}<{params}>"
            self.position += 1
            inner = self.pipeline(depth + 1)
            if self.peek() != ")":
                raise PassListError(f"missing `)` after the passes nested in {name}")
            self.position += 1
            return f"{head}({inner})"
        self.count += 1
        if self.count > MAX_PASSES:
            raise PassListError(f"more than {MAX_PASSES} passes")
        return self.check_pass(name, params)

    def check_pass(self, name: str, params: str | None) -> str:
        spec = self.vocabulary.passes.get(name)
        if spec is None:
            raise PassListError(f"unknown pass `{name}` (not a transformation pass of opt {self.vocabulary.opt_version})")
        params = _without_fixpoint_check(spec, params)
        if params is None:
            if spec.requires_params:
                raise PassListError(f"`{name}` needs parameters, e.g. {name}<{sorted(spec.options)[0]}>")
            return name
        for item in params.split(";"):
            if not item:
                continue
            key, equals, value = item.partition("=")
            if equals:
                if key + "=" not in spec.options or not re.fullmatch(r"[A-Za-z0-9_.\-]+", value):
                    raise PassListError(f"`{item}` is not a parameter of `{name}`")
            elif item not in spec.options:
                raise PassListError(f"`{item}` is not a parameter of `{name}`")
        return f"{name}<{params}>"

    def peek(self) -> str:
        return self.text[self.position] if self.position < len(self.text) else ""


def _without_fixpoint_check(spec: PassSpec, params: str | None) -> str | None:
    """InstCombine named in a pass list checks that it reached a fixpoint and aborts `opt` when it did not:
    a test of InstCombine itself, which throws away a valid result (2 to 6 in 1,000 candidates on the
    public benchmark, often the best list of a large function). LLVM's -O pipelines run it with
    `no-verify-fixpoint`; so does every list PassPilot runs, written out in the normalized list, so that
    what is shown and inserted runs the same in `opt`. An explicit `verify-fixpoint` is kept."""
    if FIXPOINT_CHECK_OFF not in spec.options:
        return params
    items = [item for item in (params or "").split(";") if item]
    if any(item in (FIXPOINT_CHECK_OFF, FIXPOINT_CHECK_ON) for item in items):
        return params
    return ";".join([*items, FIXPOINT_CHECK_OFF])


def split_pipeline(pipeline: str) -> list[str]:
    """The top-level elements of a pass list, split on the commas outside `<...>` and `(...)`:
    `sroa,function(gvn,dce),simplifycfg<keep-loops>` -> `sroa`, `function(gvn,dce)`, `simplifycfg<keep-loops>`.

    It reads unchecked text too (a model's answer) and never raises; whitespace around elements and empty
    elements are dropped. Whether the elements form a valid list is `PassVocabulary.check`'s call.
    """
    elements: list[str] = []
    depth = 0
    start = 0
    for index, char in enumerate(pipeline):
        if char in "(<":
            depth += 1
        elif char in ")>":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            elements.append(pipeline[start:index])
            start = index + 1
    elements.append(pipeline[start:])
    return [element.strip() for element in elements if element.strip()]


def element_name(element: str) -> str:
    """The pass or adaptor name of one element: `instcombine<max-iterations=1>` -> `instcombine`,
    `function<eager-inv>(sroa)` -> `function`."""
    end = len(element)
    for stop in "<(":
        index = element.find(stop)
        if index != -1:
            end = min(end, index)
    return element[:end].strip()


def nested_pipeline(element: str) -> tuple[str, str] | None:
    """(adaptor, the pipeline inside it) of a nesting element: `function<eager-inv>(gvn,dce)` ->
    (`function<eager-inv>`, `gvn,dce`); None for a plain pass (or an unclosed nesting)."""
    depth = 0
    for index, char in enumerate(element):
        if char == "<":
            depth += 1
        elif char == ">":
            depth = max(0, depth - 1)
        elif char == "(" and depth == 0:
            if not element.rstrip().endswith(")"):
                return None
            return element[:index].strip(), element[index + 1 : element.rstrip().rfind(")")]
    return None


def pipeline_pass_names(pipeline: str) -> list[str]:
    """The names of the passes a pipeline runs, in order, adaptors unwrapped:
    `function(loop-mssa(licm)),default<Oz>` -> `licm`, `default`."""
    names: list[str] = []
    for element in split_pipeline(pipeline):
        nested = nested_pipeline(element)
        if nested is not None:
            names += pipeline_pass_names(nested[1])
        else:
            names.append(element_name(element))
    return names


def load_vocabulary(opt: OptTool, cache_dir: Path | None = None) -> PassVocabulary:
    """The passes this `opt` knows; OptNotFound when it cannot list them (it is no usable `opt`).

    Kept per process, and on disk (`cache_dir`, default `binary_facts.facts_dir()`) under the binary's
    identity, so that a new process does not run `opt --print-passes` again (`read_vocabulary`).
    """
    return _vocabulary(opt.path, opt.version, str(cache_dir or binary_facts.facts_dir()))


@lru_cache(maxsize=8)
def _vocabulary(path: str, version: str, cache_dir: str) -> PassVocabulary:
    return read_vocabulary(path, version, Path(cache_dir))


def read_vocabulary(path: str, version: str, cache_dir: Path) -> PassVocabulary:
    """The vocabulary from the `--print-passes` output stored for this binary (resolved path, size,
    mtime_ns, version) in `cache_dir`, else from running `opt` (then stored). The raw output is stored,
    not the parsed vocabulary, so a change to the filter above takes effect without invalidating anything."""
    key = binary_facts.identity(path, version=version)
    stored = binary_facts.recall("print-passes", key, cache_dir)
    if stored is not None:
        vocabulary = parse_print_passes(stored, version)
        if len(vocabulary.passes) > 1:
            return vocabulary
    output = _print_passes(path)
    vocabulary = parse_print_passes(output, version)
    if len(vocabulary.passes) <= 1:  # only the built-in `default<…>`: nothing listed
        raise OptNotFound(f"`{path} --print-passes` listed no passes")
    binary_facts.remember("print-passes", key, output, cache_dir)
    return vocabulary


def _print_passes(path: str) -> str:
    try:
        run = subprocess.run([path, "--print-passes"], capture_output=True, text=True, errors="replace", timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise OptNotFound(f"`{path} --print-passes` failed ({error})") from None
    if run.returncode != 0:
        detail = next((line.strip() for line in run.stderr.splitlines() if line.strip()), f"exit status {run.returncode}")
        raise OptNotFound(f"`{path} --print-passes` failed ({detail[:200]})")
    return run.stdout


def parse_print_passes(output: str, version: str) -> PassVocabulary:
    passes: dict[str, PassSpec] = {}
    keep = False
    for line in output.splitlines():
        if not line.startswith(" "):
            header = line.rstrip(":").strip()
            keep = header in _KEPT_SECTIONS or header in tuple(s + " with params" for s in _KEPT_SECTIONS)
            continue
        if not keep:
            continue
        entry = line.strip()
        name, _, spec = entry.partition("<")
        if not name or _EXCLUDED.match(name):
            continue
        options: set[str] = set()
        for option in spec[:-1].split(";") if spec else ():
            key, equals, _ = option.partition("=")
            options.add(key + "=" if equals else option)
        previous = passes.get(name)
        if previous is not None:
            options |= previous.options
        passes[name] = PassSpec(name, frozenset(o for o in options if o), requires_params=False)
    passes["default"] = PassSpec("default", frozenset(PIPELINE_LEVELS), requires_params=True)
    passes.pop("function-simplification", None)
    return PassVocabulary(passes, version)
