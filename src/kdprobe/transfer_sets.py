"""Which transfer set a student is distilled on (`students.<student>.transfer`), and the subset a fraction keeps.

`transfer` is a kind, or `{kind: <kind>, fraction: f}` (0 < f <= 1):

- `gpt2` (default): the training set and the GPT-2 samples (`results/transfer/{task}/shard{i}.parquet`), as the
  thesis;
- `rules`: the training set and its d-lite variants (Tang et al. 2019b; `kdprobe.augment.rules`),
  `results/transfer/{task}/rules/shard{i}.parquet`;
- `random_words`: the training set and word sequences drawn from its vocabulary by frequency (Krishna et al. 2020;
  `kdprobe.augment.random_words`), `results/transfer/{task}/random_words/shard{i}.parquet`;
- `none`: the training set only.

A fraction keeps `round(f * n)` of the set's n rows (at least one): each row gets a uniform key from a generator
seeded by the kind and its part's name (`train`, `shard0`, ...), never by the student's seed, so every seed of a
run trains on the same rows; the rows with the smallest keys are kept, so a smaller fraction's rows are a subset of
a larger one's (`subset_mask`). This module imports neither torch nor pandas: the workflow reads it at start-up.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from kdprobe.errors import ConfigError

#: Every kind of transfer set; the default first.
KINDS = ("gpt2", "rules", "random_words", "none")
#: The kinds the workflow generates with rule `generate` (gpt2's shards come from rule `sample`).
GENERATED_KINDS = ("rules", "random_words")


@dataclass(frozen=True)
class TransferKind:
    """A student's transfer set: `kind` (one of `KINDS`) and the `fraction` of its rows used (1: all)."""

    kind: str = "gpt2"
    fraction: float = 1.0

    @property
    def augmented(self) -> bool:
        """Whether the set has parts besides the training set."""
        return self.kind != "none"

    @property
    def label(self) -> str:
        """`kind`, or `kind@fraction` below 1 (the transfer summary's rows)."""
        return self.kind if self.fraction == 1 else f"{self.kind}@{self.fraction:g}"


def transfer_kind(settings: dict[str, Any], key: str = "transfer") -> TransferKind:
    """The `TransferKind` of a student's settings (`settings['transfer']`; absent: gpt2, all rows); a bad value is
    a ConfigError naming `key` (e.g. `students.bert_s.transfer`)."""
    return parse_transfer(settings.get("transfer"), key)


def parse_transfer(value: Any, key: str = "transfer") -> TransferKind:
    """A `transfer` value (None, a kind, or `{kind, fraction}`) as a `TransferKind`."""
    if value is None:
        return TransferKind()
    if isinstance(value, dict):
        extra = sorted(set(value) - {"kind", "fraction"})
        if extra:
            raise ConfigError(f"{key}.{extra[0]}", "unknown key (transfer takes kind and fraction)")
        kind, fraction = value.get("kind", "gpt2"), value.get("fraction", 1.0)
        key_kind = f"{key}.kind"
    else:
        kind, fraction, key_kind = value, 1.0, key
    if kind not in KINDS:
        raise ConfigError(key_kind, f"{kind!r} is no transfer-set kind; choose one of {list(KINDS)}")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise ConfigError(f"{key}.fraction", f"{fraction!r}: a fraction of the rows, 0 < fraction <= 1")
    return TransferKind(str(kind), float(fraction))


def _stream(kind: str, part: str) -> np.random.Generator:
    """The generator of one part's row keys: a fixed function of the kind and the part's name."""
    return np.random.default_rng([zlib.crc32(kind.encode()), zlib.crc32(part.encode())])


def subset_mask(transfer: TransferKind, parts: Sequence[tuple[str, int]]) -> np.ndarray:
    """Which rows of the concatenated `parts` ([(name, rows), ...], in file order) `transfer.fraction` keeps."""
    total = sum(n for _, n in parts)
    if transfer.fraction >= 1 or total == 0:
        return np.ones(total, dtype=bool)
    keys = np.concatenate([_stream(transfer.kind, name).random(n) for name, n in parts])
    n_keep = max(1, int(round(transfer.fraction * total)))
    keep = np.zeros(total, dtype=bool)
    keep[np.argsort(keys, kind="stable")[:n_keep]] = True
    return keep


def used_kinds(settings_list: Sequence[dict[str, Any]]) -> list[TransferKind]:
    """The distinct `TransferKind`s of `settings_list` (students' and variants' settings), in order of appearance."""
    seen: dict[TransferKind, None] = {}
    for settings in settings_list:
        seen.setdefault(transfer_kind(settings), None)
    return list(seen)
