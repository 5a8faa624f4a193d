"""The pass vocabulary of an `opt`, and checking pass lists against it.

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

from .locate import OptTool

MAX_PASSES = 256
MAX_DEPTH = 4
PIPELINE_LEVELS = ("O0", "O1", "O2", "O3", "Os", "Oz")
ADAPTORS = ("module", "cgscc", "function", "loop", "loop-mssa")
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

    def is_known(self, element: str) -> bool:
        try:
            self.check(element)
        except PassListError:
            return False
        return True


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
            if name not in ADAPTORS or params is not None:
                raise PassListError(f"`{name}` cannot contain nested passes")
            self.position += 1
            inner = self.pipeline(depth + 1)
            if self.peek() != ")":
                raise PassListError(f"missing `)` after the passes nested in {name}")
            self.position += 1
            return f"{name}({inner})"
        self.count += 1
        if self.count > MAX_PASSES:
            raise PassListError(f"more than {MAX_PASSES} passes")
        return self.check_pass(name, params)

    def check_pass(self, name: str, params: str | None) -> str:
        spec = self.vocabulary.passes.get(name)
        if spec is None:
            raise PassListError(f"unknown pass `{name}` (not a transformation pass of opt {self.vocabulary.opt_version})")
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


def load_vocabulary(opt: OptTool) -> PassVocabulary:
    return _vocabulary(opt.path, opt.version)


@lru_cache(maxsize=8)
def _vocabulary(path: str, version: str) -> PassVocabulary:
    output = subprocess.run([path, "--print-passes"], capture_output=True, text=True, timeout=30, check=True).stdout
    return parse_print_passes(output, version)


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
