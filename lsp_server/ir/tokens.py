"""Token-level view of LLVM IR text.

Splicing and extraction rewrite references (`@globals`, `#attribute groups`, `!metadata`) without
touching string literals or comments, so every rewrite goes through `rewrite_references`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

# Strings first so that `;`, `@`, `#` or `!` inside a literal are never mistaken for tokens.
_TOKEN = re.compile(
    r"""
     (?P<string>c?"[^"]*")
    |(?P<comment>;[^\n\r]*)
    |(?P<block>/\*(?:[^*]|\*(?!/))*(?:\*/)?)
    |(?P<global>@(?:"[^"]*"|[-a-zA-Z$._][-a-zA-Z$._0-9]*|[0-9]+))
    |(?P<attr>\#[0-9]+)
    |(?P<metadata>!\s*[0-9]+)  # LLVM also reads `! 3` as `!3`
    """,
    re.VERBOSE,
)

Mapping = Callable[[str], str] | dict[str, str]

NAME = r'(?:"[^"]*"|[-a-zA-Z$._][-a-zA-Z$._0-9]*|[0-9]+)'  # after a sigil: quoted, identifier or number
GLOBAL_NAME = "@" + NAME


def strip_comment(line: str) -> str:
    """The line without its `;` comment (a `;` inside a string literal is kept)."""
    in_string = False
    for index, char in enumerate(line):
        if char == '"':
            in_string = not in_string
        elif char == ";" and not in_string:
            end = line.find("\r", index)  # LLVM ends a comment at a carriage return too
            return line[:index] + (line[end:] if end >= 0 else "")
    return line


_COMMENT_OR_STRING = re.compile(r'"[^"]*"?|;[^\n\r]*|/\*(?:[^*]|\*(?!/))*(?:\*/)?')


def strip_comments(text: str) -> str:
    """Text without `;` and `/* */` comments; string literals (which may span lines, as in LLVM) are kept; line breaks are kept."""
    if ";" not in text and "/*" not in text:
        return text

    def keep(match: re.Match[str]) -> str:
        found = match.group()
        if found.startswith('"'):
            return found
        return "\n" * found.count("\n") if found.startswith("/*") else ""

    return _COMMENT_OR_STRING.sub(keep, text)


def iter_references(text: str) -> Iterator[tuple[str, str]]:
    """Yield (kind, token) for every global, attribute-group and metadata reference."""
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind in ("global", "attr", "metadata"):
            yield kind, _compact(match.group()) if kind == "metadata" else match.group()


def references(text: str, kind: str) -> set[str]:
    return {token for k, token in iter_references(text) if k == kind}


def rewrite_references(
    text: str,
    *,
    globals: Mapping | None = None,
    attrs: Mapping | None = None,
    metadata: Mapping | None = None,
) -> str:
    """Replace reference tokens through the given maps; tokens not in a map stay as they are."""

    def lookup(mapping, token: str) -> str:
        if mapping is None:
            return token
        if callable(mapping):
            return mapping(token)
        return mapping.get(token, token)

    def replace(match: re.Match[str]) -> str:
        kind = match.lastgroup
        token = match.group()
        if kind == "global":
            return lookup(globals, token)
        if kind == "attr":
            return lookup(attrs, token)
        if kind == "metadata":
            compact = _compact(token)
            replaced = lookup(metadata, compact)
            return token if replaced == compact else replaced
        return token

    return _TOKEN.sub(replace, text)


def _compact(token: str) -> str:
    return "".join(token.split())


def display_name(token: str) -> str:
    """`@"a b"` -> `a b`, `@foo` -> `foo`, `@"\\C3\\A9"` -> `é`: the name users type and llvmlite reports.

    Escapes are bytes of the UTF-8 name, as LLVM prints non-ASCII names."""
    name = token[1:]
    if not (len(name) >= 2 and name.startswith('"') and name.endswith('"')):
        return name
    raw = bytearray()
    for piece in re.split(r"(\\[0-9A-Fa-f]{2})", name[1:-1]):
        if len(piece) == 3 and piece.startswith("\\"):
            raw.append(int(piece[1:], 16))
        else:
            raw += piece.encode("utf-8", errors="surrogateescape")
    return raw.decode("utf-8", errors="replace")


def global_token(name: str) -> str:
    """Inverse of `display_name`: quote names that are not plain identifiers, escaping as LLVM prints."""
    if re.fullmatch(r"[-a-zA-Z$._][-a-zA-Z$._0-9]*|[0-9]+", name):
        return "@" + name
    escaped = "".join(
        chr(byte) if 32 <= byte < 127 and chr(byte) not in '"\\' else f"\\{byte:02X}"
        for byte in name.encode("utf-8", errors="surrogateescape")
    )
    return f'@"{escaped}"'


def canonical_token(token: str) -> str:
    """One spelling per global name (`@"foo"` and `@foo`, `@"é"` and `@"\\C3\\A9"` are the same symbol)."""
    return global_token(display_name(token)) if token.startswith("@") else token


def split_top_level(text: str, separator: str = ",") -> list[str]:
    """Split on separators that are not nested in brackets or string literals."""
    parts: list[str] = []
    depth = 0
    in_string = False
    current: list[str] = []
    for char in text:
        if in_string:
            current.append(char)
            if char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "([{<":
            depth += 1
        elif char in ")]}>":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def matching_close(text: str, start: int) -> int:
    """Index of the bracket closing the one at `start`, skipping string literals; -1 if unbalanced."""
    pairs = {"(": ")", "[": "]", "{": "}", "<": ">"}
    stack: list[str] = []
    in_string = False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in pairs:
            stack.append(pairs[char])
        elif stack and char == stack[-1]:
            stack.pop()
            if not stack:
                return index
    return -1
