"""Where names are defined and used in IR text, for navigation and hover.

A line-by-line tokenizer that skips string literals and comments and knows the name kinds of LLVM IR:
`@globals`, `%locals` (scoped to their function; labels are locals too), `%types`, `#attribute groups`,
`!metadata` and `$comdats`. It works on broken text: it needs only the function spans of `ModuleLayout`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from .layout import ModuleLayout
from .tokens import NAME as _NAME
_TOKEN = re.compile(
    rf"""
     (?P<global>@{_NAME})
    |(?P<local>%{_NAME})
    |(?P<attr>\#[0-9]+)
    |(?P<metadata>!(?:[0-9]+|[-a-zA-Z$._][-a-zA-Z$._0-9]*))
    |(?P<comdat>\${_NAME})
    |(?P<string>[c!]?"[^"]*")
    |(?P<comment>;.*)
    """,
    re.VERBOSE,
)
_LABEL = re.compile(rf"^({_NAME}):")
_LOCAL_DEF = re.compile(rf"^\s*(%{_NAME})\s*=")
_TYPE_DEF = re.compile(rf"^(%{_NAME})\s*=\s*type\b")
_ATTR_DEF = re.compile(r"^attributes\s+(#[0-9]+)\s*=")
_METADATA_DEF = re.compile(r"^(!(?:[0-9]+|[-a-zA-Z$._][-a-zA-Z$._0-9]*))\s*=")
_COMDAT_DEF = re.compile(rf"^(\${_NAME})\s*=\s*comdat\b")
_GLOBAL_DEF = re.compile(rf"^(@{_NAME})\s*=")


@dataclass(frozen=True)
class Token:
    kind: str  # global, local, type, attr, metadata, comdat
    name: str  # as written: `@foo`, `%7`, `#0`, `!12`, `$c`
    line: int
    start: int  # code points
    end: int
    scope: int | None = None  # index of the enclosing function for locals
    definition: bool = False

    @property
    def key(self) -> tuple[str, str, int | None]:
        return (self.kind, self.name, self.scope)


@dataclass
class NameIndex:
    tokens_by_line: dict[int, list[Token]] = field(default_factory=dict)
    definitions: dict[tuple[str, str, int | None], Token] = field(default_factory=dict)
    uses: dict[tuple[str, str, int | None], list[Token]] = field(default_factory=lambda: defaultdict(list))

    def at(self, line: int, column: int) -> Token | None:
        """The token under (or just after) a code-point column."""
        tokens = self.tokens_by_line.get(line, [])
        for token in tokens:
            if token.start <= column < token.end:
                return token
        for token in tokens:
            if token.end == column:
                return token
        return None

    def definition(self, token: Token) -> Token | None:
        return self.definitions.get(token.key)

    def references(self, token: Token, include_declaration: bool = True) -> list[Token]:
        found = [t for t in self.uses.get(token.key, []) if include_declaration or not t.definition]
        return sorted(found, key=lambda t: (t.line, t.start))


def build_index(layout: ModuleLayout) -> NameIndex:
    lines = layout.lines
    scope_of_line: dict[int, int] = {}
    for number, span in enumerate(layout.functions):
        for line in range(span.start_line, span.end_line + 1):
            scope_of_line[line] = number

    raw: list[tuple[int, re.Match[str], str]] = []
    local_definitions: set[tuple[str, int]] = set()
    definitions_at: set[tuple[int, int]] = set()  # (line, start) of defining tokens
    for number, text in enumerate(lines):
        scope = scope_of_line.get(number)
        span = layout.functions[scope] if scope is not None else None
        in_header = span is not None and number <= span.header_end_line
        in_body = span is not None and span.header_end_line < number < span.end_line
        label = _LABEL.match(text) if in_body else None
        if label:
            name = "%" + label.group(1)
            local_definitions.add((name, scope))
            raw.append((number, label, "label"))
            definitions_at.add((number, 0))
        for match in _TOKEN.finditer(text):
            kind = match.lastgroup
            if kind in ("string", "comment"):
                continue
            if label and match.start() < label.end():
                continue
            raw.append((number, match, kind))
        if in_body:
            local = _LOCAL_DEF.match(text)
            if local:
                local_definitions.add((local.group(1), scope))
                definitions_at.add((number, local.start(1)))
        elif in_header:
            for match in _TOKEN.finditer(text):
                if match.lastgroup == "local" and _is_parameter(text, match.start(), match.end()):
                    local_definitions.add((match.group(), scope))
                    definitions_at.add((number, match.start()))
        elif scope is None:
            for pattern in (_TYPE_DEF, _ATTR_DEF, _METADATA_DEF, _COMDAT_DEF, _GLOBAL_DEF):
                found = pattern.match(text)
                if found:
                    definitions_at.add((number, found.start(1)))
                    break
    for token, line in layout.declarations.items():
        start = lines[line].find(token + "(")
        if start >= 0:
            definitions_at.add((line, start))
    for span in layout.functions:
        for line in range(span.start_line, span.header_end_line + 1):
            start = lines[line].find(span.token + "(")
            if start >= 0:
                definitions_at.add((line, start))
                break

    type_names = _type_names(layout)
    index = NameIndex()
    for number, match, kind in raw:
        scope = scope_of_line.get(number)
        if kind == "label":
            name, start, end, kind = "%" + match.group(1), 0, match.end(1), "local"
        else:
            name, start, end = match.group(), match.start(), match.end()
        token_scope = None
        if kind == "local":
            if scope is not None and (name, scope) in local_definitions:
                token_scope = scope
            elif scope is None or name in type_names:
                kind = "type"
            else:
                token_scope = scope
        token = Token(kind, name, number, start, end, token_scope, (number, start) in definitions_at)
        index.tokens_by_line.setdefault(number, []).append(token)
        index.uses[token.key].append(token)
        if token.definition:
            index.definitions.setdefault(token.key, token)
    return index


def _is_parameter(header_line: str, start: int, end: int) -> bool:
    """A `%name` that ends a parameter of a `define` header (not a type such as `byval(%struct.S)`)."""
    before = header_line[:start]
    if "@" not in before or before.count("(") - before.count(")") != 1:
        return False
    after = header_line[end:].lstrip()
    return after[:1] in (",", ")")


def _type_names(layout: ModuleLayout) -> set[str]:
    names = set()
    for definition in layout.type_definitions:
        found = _TYPE_DEF.match(definition)
        if found:
            names.add(found.group(1))
    return names
