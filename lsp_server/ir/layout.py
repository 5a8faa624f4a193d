"""Where things are in a module's text.

llvmlite tells us whether a module is valid and what it contains, but not where each entity sits in the
document; editors, splicing and extraction need exact ranges. `ModuleLayout` lexes the text the way
LLVM's own lexer does (string literals, `;` and `/* */` comments, brackets) and splits it into top-level
entities wherever LLVM's parser would start one: `define`, `declare`, `attributes`, `@x =`, `%T =`,
`!N =`, `$c =`, `source_filename`, `target`, `module asm`. An entity may span many lines, and two may
share a line. Nothing here assumes the layout that `clang` or `opt` print.

Broken text (while a user types) is indexed as far as possible: a top-level keyword at the start of a
line ends an entity whose brackets never closed.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from functools import cached_property

from .tokens import NAME, canonical_token, display_name, strip_comments

# Outside function bodies: what can start an entity, plus what changes bracket depth or hides text.
_TOP = re.compile(
    r"""
     (?P<string>"[^"]*"?)
    |(?P<comment>;[^\n\r]*)
    |(?P<block>/\*(?:[^*]|\*(?!/))*(?:\*/)?)
    |(?P<open>[\[{(<])
    |(?P<close>[\]})>])
    |(?<![-\w$.@%!#"^])(?P<keyword>define|declare|attributes|source_filename|target|module|uselistorder_bb|uselistorder)(?![-\w$.])
    |(?P<assign>(?:[@%!]|(?<![-\w$.])[$^])"""
    + NAME
    + r""")\s*=(?!=)
    """,
    re.VERBOSE,
)
# Inside a function body only braces matter (and what can hide a brace).
_BODY = re.compile(r'"[^"]*"?|;[^\n\r]*|/\*(?:[^*]|\*(?!/))*(?:\*/)?|[{}]|(?<=\n)(?:define|declare)\s')
_FUNCTION_NAME = re.compile(r"@" + NAME + r"\s*\(")
_ENTITY_KEYWORDS = {"define": "function", "declare": "declaration", "attributes": "attributes",
                    "source_filename": "header", "target": "header", "module": "header",
                    "uselistorder": "uselistorder", "uselistorder_bb": "uselistorder"}
_ASSIGN_KINDS = {"@": "global", "%": "type", "!": "metadata", "$": "comdat", "^": "summary"}


@dataclass(frozen=True)
class Entity:
    """One top-level entity: `text[start:end]` of the module, comments included."""

    kind: str  # function, declaration, global, type, metadata, comdat, attributes, header, ...
    token: str | None  # `@f`, `%T`, `!3`, `#0`, `$c`; None for headers
    start: int
    end: int
    line: int  # of `start`
    name_line: int  # where `token` is written (for navigation)
    name_column: int
    code: str  # the text without comments

    @property
    def name(self) -> str | None:
        return display_name(self.token) if self.token and self.token.startswith("@") else self.token


@dataclass(frozen=True)
class FunctionSpan:
    """A `define ... { ... }` block. Lines are 0-based; `end_line` holds the closing `}`.

    `start`/`end` are character offsets into the module text (end exclusive), exact even when the
    definition shares a line with something else."""

    token: str  # as written, e.g. `@foo` or `@"a b"`
    start_line: int
    end_line: int
    header_end_line: int  # the line holding the opening `{`
    attrs_comment_line: int | None  # a `; Function Attrs:` line right above, if any
    start: int = 0
    end: int = 0
    body_start: int = 0  # offset of the opening `{`
    name_start: int = 0  # offset of the token in the header

    @property
    def name(self) -> str:
        return display_name(self.token)


@dataclass(frozen=True)
class ModuleLayout:
    lines: tuple[str, ...]
    functions: tuple[FunctionSpan, ...]
    declarations: dict[str, int] = field(default_factory=dict)  # token -> line of its name
    globals: dict[str, int] = field(default_factory=dict)  # token -> line of `@x = ...`
    attribute_groups: dict[str, str] = field(default_factory=dict)  # `#N` -> body between braces
    metadata: dict[str, str] = field(default_factory=dict)  # `!N` -> right-hand side
    named_metadata: dict[str, str] = field(default_factory=dict)
    comdats: dict[str, str] = field(default_factory=dict)  # `$x` -> its entity
    header: tuple[str, ...] = ()  # source_filename, target datalayout/triple, module asm
    type_definitions: tuple[str, ...] = ()
    text: str = ""
    entities: tuple[Entity, ...] = ()

    @classmethod
    def from_text(cls, text: str) -> ModuleLayout:
        return _Scanner(text).layout()

    @cached_property
    def _by_name(self) -> dict[str, FunctionSpan]:
        spans: dict[str, FunctionSpan] = {}
        for span in self.functions:
            spans.setdefault(span.name, span)
        return spans

    @cached_property
    def _entity_by_token(self) -> dict[str, Entity]:
        found: dict[str, Entity] = {}
        for entity in self.entities:
            if entity.token is not None and entity.kind in ("declaration", "global"):
                found.setdefault(canonical_token(entity.token), entity)
        return found

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
        return self.text[span.start : span.end]

    def function_header(self, span: FunctionSpan) -> str:
        """`define ... @f(...) ... ` up to (not including) the `{`, without comments, on one line."""
        return " ".join(strip_comments(self.text[span.start : span.body_start]).split())

    def entity(self, token: str) -> Entity | None:
        """The `declare` or global definition of a `@` token (any spelling of the same name)."""
        return self._entity_by_token.get(canonical_token(token))

    def symbols(self) -> set[str]:
        """Every global name the module defines or declares, as canonical tokens."""
        tokens = [span.token for span in self.functions] + list(self.declarations) + list(self.globals)
        return {canonical_token(token) for token in tokens}

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column) of a character offset."""
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return line, offset - self._line_starts[line]

    def position_offset(self, line: int, column: int) -> int:
        """The character offset of (line, column)."""
        return self._line_starts[line] + column

    @cached_property
    def _line_starts(self) -> list[int]:
        starts = [0]
        for line in self.lines[:-1]:
            starts.append(starts[-1] + len(line) + 1)
        return starts


class _Scanner:
    """One pass over the text; function bodies are skipped with a cheaper pattern that only tracks braces."""

    def __init__(self, text: str):
        self.text = text
        self.lines = tuple(text.split("\n"))
        self.line_starts = [0]
        for line in self.lines[:-1]:
            self.line_starts.append(self.line_starts[-1] + len(line) + 1)
        self.entities: list[Entity] = []
        self.functions: list[FunctionSpan] = []

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.line_starts, offset) - 1

    def layout(self) -> ModuleLayout:
        self.scan()
        declarations: dict[str, int] = {}
        globals_: dict[str, int] = {}
        attribute_groups: dict[str, str] = {}
        metadata: dict[str, str] = {}
        named_metadata: dict[str, str] = {}
        comdats: dict[str, str] = {}
        header: list[str] = []
        types: list[str] = []
        for entity in self.entities:
            code = entity.code.strip()
            if entity.kind == "declaration" and entity.token:
                declarations.setdefault(entity.token, entity.name_line)
            elif entity.kind == "global" and entity.token:
                globals_.setdefault(entity.token, entity.name_line)
            elif entity.kind == "attributes" and entity.token:
                body = code.split("=", 1)[1].strip() if "=" in code else ""
                if body.startswith("{") and body.endswith("}"):
                    attribute_groups[entity.token] = " ".join(body[1:-1].split())
            elif entity.kind == "metadata" and entity.token:
                value = code.split("=", 1)[1].strip()
                if entity.token[1:].isdigit():
                    metadata[entity.token] = value
                else:
                    named_metadata[entity.token] = value
            elif entity.kind == "comdat" and entity.token:
                comdats[entity.token] = code
            elif entity.kind == "header":
                header.append(code)
            elif entity.kind == "type":
                types.append(code)
        return ModuleLayout(
            lines=self.lines,
            functions=tuple(self.functions),
            declarations=declarations,
            globals=globals_,
            attribute_groups=attribute_groups,
            metadata=metadata,
            named_metadata=named_metadata,
            comdats=comdats,
            header=tuple(header),
            type_definitions=tuple(types),
            text=self.text,
            entities=tuple(self.entities),
        )

    def scan(self) -> None:
        text = self.text
        position = 0
        current: tuple[str, str | None, int, int] | None = None  # kind, token, start, name offset
        depth = 0
        while True:
            match = _TOP.search(text, position)
            if match is None:
                break
            kind = match.lastgroup
            position = match.end()
            if kind in ("string", "comment", "block"):
                continue
            if kind == "open":
                depth += 1
                continue
            if kind == "close":
                depth = max(depth - 1, 0)
                continue
            at_line_start = match.start() == 0 or text[match.start() - 1] == "\n"
            if depth > 0 and not at_line_start:
                continue
            # A new top-level entity starts here (or, at depth > 0, a broken one ends).
            if kind == "keyword":
                word = match.group("keyword")
                if word == "module" and not re.match(r"module\s+asm\b", text[match.start() : match.start() + 40]):
                    continue
                if word == "attributes" and not re.match(r"attributes\s+#", text[match.start() : match.start() + 40]):
                    continue
            if current is not None:
                self.close(current, match.start())
                current = None
            depth = 0
            if kind == "assign":
                token = match.group("assign")
                current = (_ASSIGN_KINDS[token[0]], token, match.start(), match.start())
            elif match.group("keyword") == "define":
                position = self.function(match.start())
            elif match.group("keyword") == "attributes":
                group = re.match(r"attributes\s+(#[0-9]+)", text[match.start() : match.start() + 40])
                current = ("attributes", group.group(1) if group else None, match.start(), match.start())
            else:
                current = (_ENTITY_KEYWORDS[match.group("keyword")], None, match.start(), match.start())
        if current is not None:
            self.close(current, len(text))

    def close(self, current: tuple[str, str | None, int, int], limit: int) -> None:
        kind, token, start, name_offset = current
        end = _code_end(self.text, start, limit)
        code = strip_comments(self.text[start:end])
        if kind == "declaration":
            found = _FUNCTION_NAME.search(code)
            if found is None:
                return
            token = found.group().rstrip("(").rstrip()
            name_offset = start + _locate(self.text[start:end], token)
        line = self.line_of(name_offset)
        column = name_offset - self.line_starts[line]
        self.entities.append(Entity(kind, token, start, end, self.line_of(start), line, column, code))

    def function(self, start: int) -> int:
        """Index a `define` at `start`; return where scanning continues."""
        text = self.text
        # The header: the name, its parameter list, then the first `{` at bracket depth 0.
        depth = 0
        name: tuple[str, int] | None = None
        after_parameters = False
        position = start + len("define")
        body_open = -1
        while True:
            match = _TOP.search(text, position)
            if match is None:
                return len(text)
            kind = match.lastgroup
            at_line_start = text[match.start() - 1] == "\n"
            if kind in ("keyword", "assign") and at_line_start:
                return match.start()  # a header that never reached its body
            position = match.end()
            if kind in ("comment", "block"):
                continue
            if kind == "string":
                continue
            segment_name = None
            if name is None:
                found = _FUNCTION_NAME.search(strip_comments(text[start : match.start() + 1]))
                if found is not None:
                    raw = found.group().rstrip("(").rstrip()
                    segment_name = (raw, start + _locate(text[start : match.end()], raw))
                    name = segment_name
            if kind == "open":
                if match.group() == "{" and depth == 0 and after_parameters:
                    body_open = match.start()
                    break
                depth += 1
            elif kind == "close":
                depth = max(depth - 1, 0)
                if depth == 0 and match.group() == ")" and name is not None:
                    after_parameters = True
        if name is None:
            return position
        # The body: only braces count.
        depth = 1
        position = body_open + 1
        while True:
            match = _BODY.search(text, position)
            if match is None:
                return len(text)  # unterminated body: no span
            token = match.group()
            if token.startswith(("define", "declare")):
                return match.start()  # unterminated body: a new top-level entity at a line start
            position = match.end()
            if token == "{":
                depth += 1
            elif token == "}":
                depth -= 1
                if depth == 0:
                    break
        end = position
        start_line = self.line_of(start)
        comment_line = None
        if start_line > 0 and self.lines[start_line - 1].startswith("; Function Attrs:") and not self.text[
            self.line_starts[start_line] : start
        ].strip():
            comment_line = start_line - 1
        span = FunctionSpan(
            token=name[0],
            start_line=start_line,
            end_line=self.line_of(end - 1),
            header_end_line=self.line_of(body_open),
            attrs_comment_line=comment_line,
            start=start,
            end=end,
            body_start=body_open,
            name_start=name[1],
        )
        self.functions.append(span)
        name_line = self.line_of(name[1])
        self.entities.append(
            Entity("function", name[0], start, end, start_line, name_line, name[1] - self.line_starts[name_line], "")
        )
        return end


_STRING_OR_COMMENT = re.compile(r'"[^"]*"?|;[^\n\r]*|/\*(?:[^*]|\*(?!/))*(?:\*/)?')


def _code_end(text: str, start: int, limit: int) -> int:
    """The end of the last character of code before `limit` (trailing comments and blanks excluded)."""
    end = start
    position = start
    for match in _STRING_OR_COMMENT.finditer(text, start, limit):
        code = text[position : match.start()]
        if code.strip():
            end = position + len(code.rstrip())
        if match.group().startswith('"'):
            end = match.end()
        position = match.end()
    code = text[position:limit]
    if code.strip():
        end = position + len(code.rstrip())
    return end


def _locate(segment: str, token: str) -> int:
    """Offset of `token` in `segment` outside string literals and comments (0 if absent)."""
    for match in re.finditer(r'"[^"]*"?|;[^\n\r]*|' + re.escape(token) + r"(?![-\w$.])", segment):
        if match.group() == token:
            return match.start()
    return 0


def defines_function(text: str, token: str) -> bool:
    """Whether module text defines the function `token` (any spelling of its name)."""
    return ModuleLayout.from_text(text).function(display_name(token)) is not None
