"""Rasa NLU training data: the markdown and YAML formats, entity markup, and pseudonymisation.

The parsers yield `(line, intent, text)` for every intent example, `text` still carrying Rasa's entity markup
(`[text](entity)`, `[text](entity:value)`, `[text]{"entity": ...}`); `kdprobe.data.prepare` pseudonymises it if asked
and strips the markup. Synonym, regex and lookup entries are skipped; YAML `metadata` is ignored. Every
malformed line is an `InputError` naming the file and line, so that no example is dropped without a word: a
section or entry of another kind, a folded YAML block, an intent name with a control character (a tab).
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from pathlib import Path
from typing import Iterator

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from kdprobe.errors import InputError

log = logging.getLogger(__name__)

Lines = list[tuple[int, str]]  # (line number, text) as `kdprobe.data.prepare.read_lines` gives them

_MARKUP = re.compile(r"\[([^\[\]]+)\](?:\(([^()]*)\)|(\{[^{}]*\}))")
_OPEN_MARKUP = re.compile(r"\[[^\[\]]+\](?:\([^()]*|\{[^{}]*)$")  # markup opened, never closed


def strip_entities(text: str) -> str:
    """Rasa entity markup `[text](entity)`, `[text](entity:value)`, `[text]{"entity": ...}` -> `text`."""
    return _MARKUP.sub(r"\1", text)


def unterminated_markup(text: str) -> str | None:
    """The tail of `text` from entity markup that is opened but never closed (`[text](ent`), else None."""
    match = _OPEN_MARKUP.search(text)
    return text[match.start():] if match else None


def _entity(match: re.Match) -> str | None:
    """The entity type of one markup match: `(entity)`, `(entity:value)` or the JSON object's "entity"."""
    if match.group(2) is not None:
        return match.group(2).partition(":")[0].strip()
    try:
        spec = json.loads(match.group(3))
    except json.JSONDecodeError:
        return None
    return spec.get("entity") if isinstance(spec, dict) else None


# ------------------------------------------------------------------------------------------ pseudonymisation --

#: Entity types whose marked-up text is a person's name: `name` (rasa-demo's: `[Rufus Gardner](name)`) and
#: `PERSON` (spaCy's label, which Rasa data written for the SpacyEntityExtractor uses). Matched exactly.
NAME_ENTITIES = ("name", "PERSON")
PERSON_NAME = "__PERSON_NAME__"
EMAIL_ADDRESS = "__EMAIL_ADDRESS__"
#: An e-mail address anywhere in the text, marked up or not: local part, `@`, dotted domain ending in letters.
EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")


class Pseudonymiser:
    """Replaces person names and e-mail addresses in marked-up Rasa text, as the thesis did; counts them.

    A name is the whole markup of an entity of type `NAME_ENTITIES` (`[Rufus Gardner](name)` ->
    `__PERSON_NAME__`); names without such markup are not found. An e-mail address is any match of `EMAIL`,
    inside markup or not (`my email is [a@b.com](email)` -> `my email is __EMAIL_ADDRESS__` once stripped).
    Apply it before the markup is stripped.
    """

    def __init__(self) -> None:
        self.names = self.emails = self.examples = 0

    def _name(self, match: re.Match) -> str:
        if _entity(match) not in NAME_ENTITIES:
            return match.group(0)
        self.names += 1
        return PERSON_NAME

    def __call__(self, text: str) -> str:
        names = self.names
        text = _MARKUP.sub(self._name, text)
        text, emails = EMAIL.subn(EMAIL_ADDRESS, text)
        self.emails += emails
        self.examples += bool(emails or self.names > names)
        return text


# ------------------------------------------------------------------------------------------------ markdown --

_ITEM = re.compile(r"^\s*[-*+]\s+(.*)$")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
#: Rasa's section kinds, of markdown headers (`## KIND:NAME`, case as written) and of YAML `nlu:` entries.
KINDS = ("intent", "synonym", "regex", "lookup")
_HEADER = re.compile(r"##\s*([^:]*?)\s*:(.*)")


def _intent_name(path: str | Path, name: str, line: int) -> str:
    """An intent name, stripped: never empty, never with a control character (a tab would split the TSV)."""
    name = name.strip()
    if not name:
        raise InputError(path, "an intent entry without an intent name", line)
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise InputError(path, f"intent name {name[:40]!r} holds a control character (a tab?)", line)
    return name


def parse_md(path: str | Path, lines: Lines) -> Iterator[tuple[int, str, str]]:
    """Rasa NLU markdown: `## intent:NAME` then `- example` lines; synonym/regex/lookup sections are skipped.

    A `##` line must be a header `## KIND:NAME` of one of Rasa's `KINDS`, in lower case (`## Intent:greet`,
    `## intent greet`, `## foo` are errors naming the line: skipped, their examples would be lost). HTML
    comments are dropped (line numbers kept). Inside an intent section every non-blank line must be an
    example; an example before any `##` section and an intent section without examples (a doubled header
    line, a file cut after a header) are errors. An intent whose section appears twice collects the examples
    of both, as Rasa does.
    """
    text = "\n".join(line for _, line in lines)
    text = _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    section: str | None = None  # None: before any section; "": a skipped section
    header = 0  # line of the current intent header
    section_size = 0

    def close_section() -> None:
        if section and not section_size:  # a header cut off from its examples, or a doubled header line
            raise InputError(path, f"intent {section!r} has no examples", header)

    for n, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("##"):
            close_section()
            match = _HEADER.fullmatch(stripped)
            if not match or match.group(1) not in KINDS:
                raise InputError(path, f"unknown section {stripped[:40]!r} (Rasa's are "
                                       f"{', '.join(f'## {kind}:NAME' for kind in KINDS)})", n)
            section, header, section_size = "", n, 0
            if match.group(1) == "intent":
                section = _intent_name(path, match.group(2), n)
            continue
        item = _ITEM.match(line)
        if section is None and item:
            raise InputError(path, "example before any '## intent:NAME' section", n)
        if section:
            if not item:
                raise InputError(path, f"expected '- example' in intent {section!r}, found {stripped[:40]!r}", n)
            yield n, section, item.group(1)
            section_size += 1
    close_section()


# ---------------------------------------------------------------------------------------------------- YAML --

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_ITEM = re.compile(r"^\s*-(.*)$")


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _first_content_line(node: Node) -> int:
    """Line of a scalar's first content line: a `|` or `>` block starts on the line after its indicator."""
    return _line(node) + (isinstance(node, ScalarNode) and node.style in ("|", ">"))


def _mapping(path: str | Path, node: MappingNode) -> dict[str, Node]:
    """Keys -> value nodes of a YAML mapping; a repeated or non-scalar key is an error."""
    out: dict[str, Node] = {}
    for key, value in node.value:
        if not isinstance(key, ScalarNode):
            raise InputError(path, "expected a plain key", _line(key))
        if key.value in out:
            raise InputError(path, f"duplicate key {key.value!r}", _line(key))
        out[key.value] = value
    return out


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _text(path: str | Path, node: Node, what: str) -> str:
    if not isinstance(node, ScalarNode) or _is_null(node):
        raise InputError(path, f"{what} must be a string", _line(node))
    return node.value


def _folds(node: ScalarNode, source: list[str]) -> bool:
    """Whether a scalar joins lines of its `source` into one: a `>` block, or a plain or quoted scalar with two
    non-blank lines in a row (YAML folds that line break into a space)."""
    if node.style in (">", "|"):
        return node.style == ">"
    span = source[node.start_mark.line: node.end_mark.line + 1]
    return any(a.strip() and b.strip() for a, b in zip(span, span[1:]))


def _examples(path: str | Path, node: Node, intent: str, source: list[str]) -> Iterator[tuple[int, str]]:
    """`examples:` of an intent: a block of `- example` lines, or a list of `{text: ..., metadata: ...}`; a block
    that folds lines into one (`_folds`; `source`: the file's lines) is an error."""
    if isinstance(node, SequenceNode):
        for item in node.value:
            fields = _mapping(path, item) if isinstance(item, MappingNode) else {}
            if "text" not in fields or set(fields) - {"text", "metadata"}:
                raise InputError(path, f"intent {intent!r}: expected a '- text: ...' item (with optional "
                                       "'metadata:')", _line(item))
            yield _first_content_line(fields["text"]), _text(path, fields["text"], "'text'")
        return
    block = _text(path, node, f"intent {intent!r}: 'examples'")
    if _folds(node, source):
        raise InputError(path, f"intent {intent!r}: 'examples' folds lines into one example (a '>' block, or lines "
                               "of a plain or quoted string); write 'examples: |'", _line(node))
    first = _first_content_line(node)
    literal = node.style == "|"
    for i, line in enumerate(block.split("\n")):
        n = first + i if literal else first
        if not line.strip():
            continue
        item = _YAML_ITEM.match(line)
        if not item:
            raise InputError(path, f"expected '- example' in intent {intent!r}, found {line.strip()[:40]!r}", n)
        yield n, item.group(1)


def parse_yaml(path: str | Path, lines: Lines) -> Iterator[tuple[int, str, str]]:
    """Rasa 2/3 NLU YAML: a top-level `nlu:` list of `- intent: NAME` entries with `examples: |` and one
    `- example` per line (or `examples:` as a list of `- text: ...` items); `metadata` is ignored.

    Synonym, regex and lookup entries are skipped; a file without `nlu:` (a domain, stories, rules or responses
    file) holds no examples. Invalid YAML, a repeated key, an entry that is none of intent/synonym/regex/lookup,
    an unknown key in an intent entry and an intent without examples are errors naming the line. The YAML is
    only composed (never constructed), so tags cannot create objects.
    """
    text = "\n".join(line for _, line in lines)
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as err:
        mark, context = err.problem_mark or err.context_mark, err.context_mark
        since = f" ({err.context} from line {context.line + 1})" if err.context and context and mark \
            and context.line != mark.line else ""
        raise InputError(path, f"not valid YAML: {err.problem or err.context}{since}",
                         mark.line + 1 if mark else None) from None
    except yaml.YAMLError as err:
        raise InputError(path, f"not valid YAML: {err}") from None
    if root is None:
        return
    if not isinstance(root, MappingNode):
        raise InputError(path, "expected a YAML mapping with an 'nlu:' list at the top", _line(root))
    nlu = _mapping(path, root).get("nlu")
    if nlu is None:
        for key in (key for key, _ in root.value if key.value.strip().lower() == "nlu"):
            log.warning("%s:%d: top-level key %r is not Rasa's 'nlu' (lowercase): its entries are not read", path,
                        _line(key), key.value)
        return
    if not isinstance(nlu, SequenceNode):
        raise InputError(path, "'nlu:' must be a list of '- intent: NAME' entries", _line(nlu))
    source = text.split("\n")
    for entry in nlu.value:
        fields = _mapping(path, entry) if isinstance(entry, MappingNode) else {}
        kinds = [kind for kind in KINDS if kind in fields]
        if len(kinds) != 1:
            raise InputError(path, "an 'nlu:' entry needs exactly one of 'intent', 'synonym', 'regex', 'lookup'",
                             _line(entry))
        if kinds[0] != "intent":
            continue
        unknown = sorted(set(fields) - {"intent", "examples", "metadata"})
        if unknown:
            raise InputError(path, f"unknown key {unknown[0]!r} in an intent entry (expected examples, metadata)",
                             _line(entry))
        intent = _intent_name(path, _text(path, fields["intent"], "the intent name"), _line(fields["intent"]))
        size = 0
        examples = fields.get("examples")
        if examples is not None and not _is_null(examples):  # `examples:` left empty: no examples
            for n, example in _examples(path, examples, intent, source):
                yield n, intent, example
                size += 1
        if not size:
            raise InputError(path, f"intent {intent!r} has no examples", _line(entry))
