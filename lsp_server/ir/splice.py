"""Put an optimized function back into its module without touching anything else.

`opt` prints the standalone module with its own numbering of attribute groups and metadata, and passes
may create declarations, constants (switch tables) or whole functions (outlining). Those are merged into
the original module: identical attribute groups and metadata are reused, new ones get fresh numbers,
and new symbols whose names clash with the module's are renamed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .layout import FunctionSpan, ModuleLayout
from .standalone import StandaloneFunction, restore_anonymous
from .tokens import canonical_token, display_name, global_token, references, rewrite_references


class SpliceError(Exception):
    pass


@dataclass(frozen=True)
class Splice:
    """Replace `text[start:end]` (the function, with its `; Function Attrs:` line) with `function_text`,
    and append `appendix` to the module. Lines and columns say the same for editors (end exclusive)."""

    start: int
    end: int
    first_line: int
    first_column: int
    last_line: int
    last_column: int
    function_text: str
    appendix: str
    # The appendix by section, so that several splices can append each section once (engine/module.py).
    declarations: tuple[str, ...] = ()
    attribute_groups: tuple[str, ...] = ()
    metadata: tuple[str, ...] = ()

    def apply(self, text: str) -> str:
        result = text[: self.start] + self.function_text + text[self.end :]
        if self.appendix:
            if not result.endswith("\n"):
                result += "\n"
            result += "\n" + self.appendix + "\n"
        return result


def splice_function(
    layout: ModuleLayout, span: FunctionSpan, standalone: StandaloneFunction, optimized_module: str
) -> Splice:
    optimized = ModuleLayout.from_text(optimized_module)
    target = optimized.function(display_name(restore_anonymous(standalone.token))) or optimized.function(
        display_name(standalone.token)
    )
    if target is None:
        raise SpliceError(f"the optimized module has no definition of {standalone.token}")

    existing = layout.symbols()
    renames = _new_names(optimized, target, existing)

    def global_map(token: str) -> str:
        if token in renames:
            return renames[token]
        restored = restore_anonymous(token)
        if restored != token:
            return restored
        # Keep the module's own spelling of a name opt printed differently (`@"\\C3\\A9"` for `@"é"`).
        return spelling.get(canonical_token(token), token)

    spelling = {canonical_token(token): token for token in _written_tokens(layout)}
    target_token = target.token

    new_entities: list[str] = []
    for entity in optimized.entities:
        if entity.kind == "declaration" and _is_new(entity.token, existing):
            new_entities.append(entity.code.strip())
        elif entity.kind == "global" and (_is_new(entity.token, existing) or entity.token in renames):
            new_entities.append(entity.code.strip())
    for other in optimized.functions:
        if other.token != target_token:
            new_entities.append(optimized.function_text(other))

    function_text = optimized.function_text(target)
    attr_map, new_groups = _merge_attribute_groups(layout, optimized, [function_text, *new_entities])
    metadata_map, new_metadata = _merge_metadata(layout, optimized, [function_text, *new_entities])

    def rewrite(text: str) -> str:
        return rewrite_references(text, globals=global_map, attrs=attr_map, metadata=metadata_map)

    function_text = _restore_linkage(rewrite(function_text), global_map(target_token), standalone.linkage)
    start = span.start
    if span.attrs_comment_line is not None:
        start = layout.position_offset(span.attrs_comment_line, 0)
        if target.attrs_comment_line is not None:
            function_text = optimized.lines[target.attrs_comment_line] + "\n" + function_text

    declarations = tuple(rewrite(text) for text in new_entities)
    attribute_lines = tuple(f"attributes {token} = {{ {body} }}" for token, body in new_groups)
    metadata_lines = tuple(f"{token} = {rewrite(body)}" for token, body in new_metadata)
    appendix = "\n".join((*declarations, *attribute_lines, *metadata_lines))
    first_line, first_column = layout.position(start)
    last_line, last_column = layout.position(span.end)
    return Splice(
        start, span.end, first_line, first_column, last_line, last_column, function_text, appendix, declarations, attribute_lines, metadata_lines
    )


def _written_tokens(layout: ModuleLayout) -> list[str]:
    return [span.token for span in layout.functions] + list(layout.declarations) + list(layout.globals)


def _is_new(token: str | None, existing: set[str]) -> bool:
    return token is not None and canonical_token(restore_anonymous(token)) not in existing


def _new_names(optimized: ModuleLayout, target: FunctionSpan, existing: set[str]) -> dict[str, str]:
    """Definitions that passes created and whose names the module already uses get fresh names."""
    taken = existing | optimized.symbols()
    created = [f.token for f in optimized.functions if f.token != target.token]
    created += [
        entity.token
        for entity in optimized.entities
        if entity.kind == "global" and entity.token and not _is_declaration(entity.code)
    ]
    renames: dict[str, str] = {}
    for token in created:
        if canonical_token(restore_anonymous(token)) not in existing:
            continue
        base = display_name(token)
        suffix = 1
        while canonical_token(global_token(f"{base}.pp{suffix}")) in taken:
            suffix += 1
        renames[token] = global_token(f"{base}.pp{suffix}")
        taken.add(canonical_token(renames[token]))
    return renames


def _is_declaration(line: str) -> bool:
    head = line.split("=", 1)[1] if "=" in line else line
    return bool(re.match(r"\s*(extern_weak|external)\b", head))


def _restore_linkage(function_text: str, token: str, linkage: str | None) -> str:
    if linkage in (None, "external"):
        return function_text
    first, _, rest = function_text.partition("\n")
    if not first.startswith("define "):
        raise SpliceError("unexpected function header in optimized module")
    first = "define " + linkage + " " + first[len("define ") :].lstrip()
    if linkage in ("private", "internal"):
        first = re.sub(r"\b(hidden|protected)\s+", "", first.split(token, 1)[0], count=1) + token + first.split(token, 1)[1]
    return first + ("\n" + rest if rest else "")


def _merge_attribute_groups(
    layout: ModuleLayout, optimized: ModuleLayout, texts: list[str]
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    by_body = {body: token for token, body in layout.attribute_groups.items()}
    next_number = max((int(t[1:]) for t in layout.attribute_groups), default=-1) + 1
    mapping: dict[str, str] = {}
    created: list[tuple[str, str]] = []
    used = set().union(*(references(text, "attr") for text in texts))
    for token in sorted(used, key=lambda t: int(t[1:])):
        body = optimized.attribute_groups.get(token)
        if body is None:
            continue
        if body in by_body:
            mapping[token] = by_body[body]
        else:
            mapping[token] = f"#{next_number}"
            created.append((mapping[token], body))
            by_body[body] = mapping[token]
            next_number += 1
    return mapping, created


def _merge_metadata(
    layout: ModuleLayout, optimized: ModuleLayout, texts: list[str]
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Reuse a module node when the optimized node has the same structure; copy the rest."""
    original_keys = _structural_keys(layout.metadata)
    by_key: dict[str, str] = {}
    for token, key in original_keys.items():
        by_key.setdefault(key, token)
    optimized_keys = _structural_keys(optimized.metadata)
    next_number = max((int(t[1:]) for t in layout.metadata), default=-1) + 1

    mapping: dict[str, str] = {}
    created: list[tuple[str, str]] = []
    pending = sorted(set().union(*(references(text, "metadata") for text in texts)), key=lambda t: int(t[1:]))
    while pending:
        token = pending.pop(0)
        if token in mapping or token not in optimized.metadata:
            continue
        body = optimized.metadata[token]
        shareable = not body.startswith("distinct") or body.startswith("distinct !DICompileUnit")
        key = optimized_keys[token]
        if shareable and key in by_key:
            mapping[token] = by_key[key]
            continue
        mapping[token] = f"!{next_number}"
        next_number += 1
        created.append((mapping[token], body))
        pending.extend(sorted(references(body, "metadata"), key=lambda t: int(t[1:])))
    return mapping, created


def _structural_keys(nodes: dict[str, str]) -> dict[str, str]:
    """A hash of each node's text with children replaced by their keys; cycles become back-references."""
    keys: dict[str, str] = {}

    def key(token: str, stack: list[str]) -> str:
        if token in keys:
            return keys[token]
        if token in stack:
            return f"^{len(stack) - stack.index(token)}"
        if token not in nodes:
            return token
        stack.append(token)
        text = rewrite_references(nodes[token], metadata=lambda child: "!<" + key(child, stack) + ">")
        stack.pop()
        digest = hashlib.sha1(text.encode()).hexdigest()
        keys[token] = digest
        return digest

    for token in nodes:
        key(token, [])
    return keys
