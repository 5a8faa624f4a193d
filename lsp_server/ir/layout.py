"""Where things are in a module's text.

llvmlite tells us whether a module is valid and what it contains, but not where each entity sits in the
document; editors, splicing and extraction need lines. Printed IR (clang, opt) keeps every top-level
entity on its own line and ends each function body with a `}` line, which this index relies on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from .tokens import GLOBAL_NAME, display_name, strip_comment

_DEFINE_NAME = re.compile(r"(" + GLOBAL_NAME + r")\s*\(")
_ENTITY_NAME = re.compile(r"^(" + GLOBAL_NAME + r")\s*=")
_ATTR_GROUP = re.compile(r"^attributes\s+(#[0-9]+)\s*=\s*\{(.*)\}\s*$")
_METADATA = re.compile(r"^(![0-9]+)\s*=\s*(.*)$")
_NAMED_METADATA = re.compile(r"^(![-a-zA-Z$._][-a-zA-Z$._0-9]*)\s*=\s*(.*)$")
_COMDAT = re.compile(r"^(\$[^\s=]+)\s*=\s*comdat\b")


@dataclass(frozen=True)
class FunctionSpan:
    """A `define ... { ... }` block: lines are 0-based and `end_line` is the `}` line."""

    token: str  # as written, e.g. `@foo` or `@"a b"`
    start_line: int
    end_line: int
    header_end_line: int  # the line holding the opening `{`
    attrs_comment_line: int | None  # a `; Function Attrs:` line right above, if any

    @property
    def name(self) -> str:
        return display_name(self.token)


@dataclass(frozen=True)
class ModuleLayout:
    lines: tuple[str, ...]
    functions: tuple[FunctionSpan, ...]
    declarations: dict[str, int] = field(default_factory=dict)  # token -> line of `declare`
    globals: dict[str, int] = field(default_factory=dict)  # token -> line of `@x = ...`
    attribute_groups: dict[str, str] = field(default_factory=dict)  # `#N` -> body between braces
    metadata: dict[str, str] = field(default_factory=dict)  # `!N` -> right-hand side
    named_metadata: dict[str, str] = field(default_factory=dict)
    comdats: dict[str, str] = field(default_factory=dict)  # `$x` -> line
    header: tuple[str, ...] = ()  # source_filename, target datalayout/triple, module asm
    type_definitions: tuple[str, ...] = ()

    @classmethod
    def from_text(cls, text: str) -> ModuleLayout:
        lines = tuple(text.split("\n"))
        functions: list[FunctionSpan] = []
        declarations: dict[str, int] = {}
        globals_: dict[str, int] = {}
        attribute_groups: dict[str, str] = {}
        metadata: dict[str, str] = {}
        named_metadata: dict[str, str] = {}
        comdats: dict[str, str] = {}
        header: list[str] = []
        types: list[str] = []
        index = 0
        while index < len(lines):
            line = lines[index]
            if line.startswith("define"):
                span = _function_span(lines, index)
                if span is not None:
                    functions.append(span)
                    index = span.end_line + 1
                    continue
            elif line.startswith("declare"):
                match = _DEFINE_NAME.search(line)
                if match:
                    declarations[match.group(1)] = index
            elif line.startswith("@"):
                match = _ENTITY_NAME.match(line)
                if match:
                    globals_[match.group(1)] = index
            elif line.startswith("attributes"):
                match = _ATTR_GROUP.match(line)
                if match:
                    attribute_groups[match.group(1)] = match.group(2).strip()
            elif line.startswith("!"):
                match = _METADATA.match(line)
                if match:
                    metadata[match.group(1)] = match.group(2)
                else:
                    match = _NAMED_METADATA.match(line)
                    if match:
                        named_metadata[match.group(1)] = match.group(2)
            elif line.startswith("$"):
                match = _COMDAT.match(line)
                if match:
                    comdats[match.group(1)] = line
            elif line.startswith(("source_filename", "target ", "module asm")):
                header.append(line)
            elif line.startswith("%") and re.match(r"^%\S+\s*=\s*type\b", line):
                types.append(line)
            index += 1
        return cls(
            lines=lines,
            functions=tuple(functions),
            declarations=declarations,
            globals=globals_,
            attribute_groups=attribute_groups,
            metadata=metadata,
            named_metadata=named_metadata,
            comdats=comdats,
            header=tuple(header),
            type_definitions=tuple(types),
        )

    @cached_property
    def _by_name(self) -> dict[str, FunctionSpan]:
        return {span.name: span for span in self.functions}

    def function(self, name: str) -> FunctionSpan | None:
        """Look a defined function up by its display name (with or without a leading `@`)."""
        span = self._by_name.get(name)
        if span is None and name.startswith("@"):
            span = self._by_name.get(display_name(name))
        return span

    def function_at(self, line: int) -> FunctionSpan | None:
        for span in self.functions:
            if span.start_line <= line <= span.end_line:
                return span
        return None

    def function_text(self, span: FunctionSpan) -> str:
        return "\n".join(self.lines[span.start_line : span.end_line + 1])

    def symbols(self) -> set[str]:
        """Every global name token the module defines or declares."""
        return {span.token for span in self.functions} | set(self.declarations) | set(self.globals)


def _function_span(lines: tuple[str, ...], start: int) -> FunctionSpan | None:
    header_end = start
    while header_end < len(lines) and "{" not in strip_comment(lines[header_end]):
        header_end += 1
        if header_end - start > 50:  # not a function header after all
            return None
    header = " ".join(lines[start : header_end + 1])
    match = _DEFINE_NAME.search(header)
    if match is None:
        return None
    end = header_end
    if not strip_comment(lines[header_end]).rstrip().endswith("}"):
        end = header_end + 1
        while end < len(lines) and not lines[end].startswith("}"):
            if lines[end].startswith(("define", "declare")):  # unterminated body
                return None
            end += 1
        if end >= len(lines):
            return None
    comment = start - 1 if start > 0 and lines[start - 1].startswith("; Function Attrs:") else None
    return FunctionSpan(match.group(1), start, end, header_end, comment)
