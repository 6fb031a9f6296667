"""The `sources:` config section parsed into `Source` specs: what to fetch, from where, into which paths the rest
of the config uses. Fetching them is `kdprobe.fetch.fetcher`.

Schema (documented for users at the top of the section in config/config.yaml):

    sources:
      data:                       # files and archives
        <key>:
          url: URL                # http(s):// or file://  ... or, air-gapped:
          path: LOCAL_FILE        #   a local copy (copied and verified instead of downloaded)
          sha256: HEX | null      # pin of what url/path yields (the archive itself); {name: HEX} with `names`
          git_blob: HEX40         # optional pin by git blob id (`git ls-tree`); {name: HEX40} with `names`
          output: PATH            # the file it becomes ... or, for zip/tar archives:
          extract: {MEMBER: PATH} #   the members it provides
          names: [a, b]           # optional: `{name}` in url/path/output/extract takes each value
      models:                     # Hugging Face model directories, safetensors weights only
        <key>:
          repo: HUB_ID            # with revision: COMMIT ... or, air-gapped:
          path: LOCAL_DIR         #   a local model directory (copied with the same file filter)
          output: DIR

Every entry becomes one Snakemake rule (`fetch_<key>`) whose outputs are `output`/`extract` paths.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from kdprobe.errors import ConfigError
from kdprobe.fetch.download import FetchError, normalise_git_blob, normalise_sha256

log = logging.getLogger("kdprobe.fetch")

DEFAULT_CACHE_DIR = "resources/downloads"
_DATA_KEYS = {"url", "path", "sha256", "git_blob", "output", "extract", "names"}
_MODEL_KEYS = {"repo", "revision", "path", "output"}
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Source:
    """One entry of `sources.data` or `sources.models`."""

    key: str
    section: str  # data | models
    url: str | None = None
    path: str | None = None
    repo: str | None = None
    revision: str | None = None
    sha256: Any = None  # str | None, or {name: str} when `names`
    git_blob: Any = None  # the same shape as sha256
    output: str | None = None
    extract: dict[str, str] | None = None
    names: tuple[str, ...] = field(default=())

    @property
    def kind(self) -> str:
        if self.section == "models":
            return "model"
        return "archive" if self.extract else "file"

    @property
    def rule_name(self) -> str:
        return "fetch_" + re.sub(r"\W", "_", self.key)

    @property
    def origin(self) -> str:
        return self.url or self.path or f"{self.repo}@{self.revision or 'main'}"

    def outputs(self) -> list[str]:
        """Output paths (patterns with `{name}` when the entry has `names`)."""
        return list(self.extract.values()) if self.extract else [self.output]

    def for_name(self, name: str | None) -> "Source":
        """The concrete entry for one of `names` (the entry itself when it has none)."""
        if not self.names:
            if name is not None:
                raise ConfigError(f"sources.{self.section}.{self.key}", f"has no names, got name {name!r}")
            return self
        if name not in self.names:
            raise ConfigError(f"sources.{self.section}.{self.key}.names", f"{name!r} is not one of {list(self.names)}")

        def sub(value):
            return None if value is None else value.replace("{name}", name)

        def pick(pin):
            return pin.get(name) if isinstance(pin, dict) else pin

        extract = {sub(m): sub(p) for m, p in self.extract.items()} if self.extract else None
        return replace(
            self, url=sub(self.url), path=sub(self.path), output=sub(self.output), extract=extract,
            sha256=pick(self.sha256), git_blob=pick(self.git_blob), names=(),
        )


def _err(section: str, key: str, field_: str | None, message: str) -> ConfigError:
    return ConfigError(".".join(["sources", section, key] + ([field_] if field_ else [])), message)


def _parse_data(key: str, entry: dict) -> Source:
    unknown = sorted(set(entry) - _DATA_KEYS)
    if unknown:
        raise _err("data", key, unknown[0], f"unknown key (allowed: {', '.join(sorted(_DATA_KEYS))})")
    if bool(entry.get("url")) == bool(entry.get("path")):
        raise _err("data", key, None, "give exactly one of `url` (download) or `path` (local copy)")
    if bool(entry.get("output")) == bool(entry.get("extract")):
        raise _err("data", key, None, "give exactly one of `output` (a file) or `extract` (archive members)")
    extract = entry.get("extract")
    if extract is not None:
        if not isinstance(extract, dict) or not extract:
            raise _err("data", key, "extract", "a mapping of archive member -> output path")
        extract = {str(m): str(p) for m, p in extract.items()}
    names = entry.get("names") or ()
    if isinstance(names, str) or not all(isinstance(n, str) and _NAME.match(n) for n in names):
        raise _err("data", key, "names", "a list of plain names (letters, digits, _ . -)")
    names = tuple(names)
    outputs = list(extract.values()) if extract else [str(entry["output"])]
    origin = str(entry.get("url") or entry.get("path"))
    if names:
        if not all("{name}" in p for p in outputs):
            raise _err("data", key, "extract" if extract else "output", "every output needs `{name}` with `names`")
        if "{name}" not in origin:
            raise _err("data", key, "url" if entry.get("url") else "path", "needs `{name}` with `names`")
    elif any("{" in p or "}" in p for p in outputs):
        raise _err("data", key, "extract" if extract else "output", "braces are only allowed as `{name}` with `names`")
    return Source(
        key=key, section="data", url=entry.get("url"), path=entry.get("path"),
        sha256=_parse_pin(key, entry, "sha256", names, normalise_sha256),
        git_blob=_parse_pin(key, entry, "git_blob", names, normalise_git_blob),
        output=entry.get("output"), extract=extract, names=names,
    )


def _parse_pin(key: str, entry: dict, field_: str, names: tuple[str, ...], normalise) -> Any:
    """A digest pin (`sha256`, `git_blob`): one value, or {name: value} for entries with `names`."""
    pin = entry.get(field_)
    try:
        if not isinstance(pin, dict):
            return normalise(pin, field_)
        if not names:
            raise _err("data", key, field_, "a mapping is only allowed with `names`")
        extra = sorted(set(pin) - set(names))
        if extra:
            raise _err("data", key, f"{field_}.{extra[0]}", "not one of `names`")
        return {n: normalise(v, f"{field_}.{n}") for n, v in pin.items()}
    except FetchError as exc:
        raise _err("data", key, field_, str(exc)) from None


def _parse_model(key: str, entry: dict) -> Source:
    unknown = sorted(set(entry) - _MODEL_KEYS)
    if unknown:
        raise _err("models", key, unknown[0], f"unknown key (allowed: {', '.join(sorted(_MODEL_KEYS))})")
    if bool(entry.get("repo")) == bool(entry.get("path")):
        raise _err("models", key, None, "give exactly one of `repo` (Hugging Face hub) or `path` (local directory)")
    if entry.get("revision") and not entry.get("repo"):
        raise _err("models", key, "revision", "only with `repo`")
    if not entry.get("output"):
        raise _err("models", key, "output", "required: the directory the model becomes")
    return Source(
        key=key, section="models", repo=entry.get("repo"), revision=entry.get("revision"), path=entry.get("path"),
        output=str(entry["output"]),
    )


def parse_sources(sources: dict | None) -> list[Source]:
    """Validate the `sources:` section; raise ConfigError naming the key. Empty or missing: no sources."""
    if not sources:
        return []
    if not isinstance(sources, dict):
        raise ConfigError("sources", "a mapping with `data` and/or `models`")
    unknown = sorted(set(sources) - {"data", "models"})
    if unknown:
        raise ConfigError(f"sources.{unknown[0]}", "unknown key (allowed: data, models)")
    out: list[Source] = []
    for section, parse in (("data", _parse_data), ("models", _parse_model)):
        for key, entry in (sources.get(section) or {}).items():
            if not isinstance(entry, dict):
                raise _err(section, str(key), None, "a mapping")
            out.append(parse(str(key), entry))
    seen: dict[str, str] = {}
    rule_names: dict[str, str] = {}
    for src in out:
        where = f"sources.{src.section}.{src.key}"
        if src.rule_name in rule_names:
            raise ConfigError(where, f"rule name {src.rule_name} clashes with {rule_names[src.rule_name]}")
        rule_names[src.rule_name] = where
        for path in src.outputs():
            norm = os.path.normpath(path)
            if norm in seen:
                raise ConfigError(where, f"output {path} is also produced by {seen[norm]}")
            seen[norm] = where
    return out


def concrete(sources: Iterable[Source]) -> list[Source]:
    """Every entry with `names` expanded: one concrete Source per job."""
    return [s.for_name(n) for s in sources for n in (s.names or [None])]


# ----------------------------------------------------------------------------------------------- models
