"""Word-level input of the students (LSTM_S; BERT_S with word2vec embeddings): tokeniser, vocabulary, and word2vec
vectors read for that vocabulary only.

- `word_tokenize`: lower-case; tokens are runs of letters/digits, plus each "simple" punctuation character
  (`SIMPLE_PUNCTUATION`) as its own token; everything else (white space, other symbols) separates tokens.
- `build_vocab`: `[PAD]` (index 0), `[UNK]` (index 1), then every word of the transfer set (min count 1 by
  default) by descending count, ties alphabetically, so the order is deterministic.
- `load_word2vec`: streams a word2vec file (binary or text, optionally gzipped) and keeps only the rows of words in
  the vocabulary, so the 3M x 300 GoogleNews file never sits in memory. Exact matches win; a word without an exact
  match takes the first (most frequent) entry whose lower-cased form equals it (GoogleNews is case-sensitive, our
  tokens are lower-case). Words not found get U[-0.25, 0.25] vectors (Kim 2014) from a seeded generator; `[PAD]`
  is all zeros.
"""

from __future__ import annotations

import collections
import gzip
import logging
import re
from pathlib import Path
from typing import IO, Iterable, Iterator

import numpy as np
import torch

from kdprobe.errors import InputError
from kdprobe.io import write_text

log = logging.getLogger(__name__)

PAD = "[PAD]"
UNK = "[UNK]"
CLS = "[CLS]"  # BERT_S's sentence markers in a word vocabulary (`students.channels.word_input`)
SEP = "[SEP]"
SIMPLE_PUNCTUATION = ".,!?;:'\"()-&$%"
_TOKEN_RE = re.compile(r"[^\W_]+|[" + re.escape(SIMPLE_PUNCTUATION) + "]")


def word_tokenize(text: str) -> list[str]:
    """Lower-cased alphanumeric runs and simple punctuation marks, in order."""
    return _TOKEN_RE.findall(text.lower())


def build_vocab(sentences: Iterable[str], min_count: int = 1) -> list[str]:
    """`[PAD]`, `[UNK]`, then the words seen at least `min_count` times, most frequent first."""
    counts: collections.Counter[str] = collections.Counter()
    for sentence in sentences:
        counts.update(word_tokenize(sentence))
    counts.pop(PAD, None)
    counts.pop(UNK, None)
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return [PAD, UNK, *words]


def write_vocab(path: str | Path, words: list[str]) -> None:
    write_text(path, "".join(w + "\n" for w in words))


def read_vocab(path: str | Path) -> list[str]:
    words = Path(path).read_text(encoding="utf-8").split("\n")
    if words and words[-1] == "":
        words.pop()
    if len(words) < 2 or words[0] != PAD or words[1] != UNK:
        raise InputError(path, f"a vocabulary starts with {PAD} and {UNK}")
    return words


def encode_words(tokens: list[str], index: dict[str, int], max_length: int | None = None) -> list[int]:
    """Token ids (unknown words -> `[UNK]`); an empty sentence becomes one `[UNK]` so every sequence has a step."""
    unk = index[UNK]
    ids = [index.get(t, unk) for t in tokens] or [unk]
    return ids[:max_length] if max_length else ids


# --------------------------------------------------------------------------------------------------- word2vec
def _open(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _parse_header(line: bytes) -> tuple[int, int] | None:
    parts = line.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def _looks_binary(path: Path) -> bool:
    name = path.name[:-3] if path.suffix == ".gz" else path.name
    if name.endswith(".bin"):
        return True
    if name.endswith((".txt", ".vec")):
        return False
    with _open(path) as fh:
        fh.readline()
        sample = fh.read(4096)
    printable = set(range(32, 127)) | {9, 10, 13}
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the sample's end is still text
        if exc.start < len(sample) - 4:
            return True
    return any(b not in printable and b < 128 for b in sample)


def _iter_binary(fh: IO[bytes], n: int, dim: int, path: Path) -> Iterator[tuple[bytes, bytes]]:
    vec_bytes = dim * 4
    buf = b""
    pos = 0
    for i in range(n):
        while True:
            while pos < len(buf) and buf[pos] in (10, 13, 32):  # newline after a vector (original word2vec.c)
                pos += 1
            sp = buf.find(b" ", pos)
            if sp != -1 and len(buf) >= sp + 1 + vec_bytes:
                break
            more = fh.read(1 << 20)
            if not more:
                raise InputError(path, f"file ends after {i} of {n} vectors")
            buf = buf[pos:] + more
            pos = 0
        yield buf[pos:sp], buf[sp + 1 : sp + 1 + vec_bytes]
        pos = sp + 1 + vec_bytes


def _iter_text_lines(fh: IO[bytes], first: bytes | None) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of a text file whose first line was already read (`first`: it is data, not header)."""
    lineno = 1
    if first is not None:
        yield lineno, first
    for raw in fh:
        lineno += 1
        yield lineno, raw


def load_word2vec(
    path: str | Path,
    vocab: list[str],
    seed: int = 0,
    unknown_range: float = 0.25,
    binary: bool | None = None,
) -> torch.Tensor:
    """(len(vocab), D) float32 matrix: word2vec vectors for vocabulary words, U[-r, r] for the rest, 0 for PAD.

    `binary=None` decides from the name (`.bin` binary; `.txt`/`.vec` text) or, failing that, from the bytes.
    Text files may lack the `count dim` header (GloVe style).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "word2vec file not found")
    if binary is None:
        binary = _looks_binary(path)
    index = {w: i for i, w in enumerate(vocab)}
    matrix: torch.Tensor | None = None
    source = np.zeros(len(vocab), dtype=np.int8)  # 0 missing, 1 lower-case match, 2 exact match
    n_read = 0

    def assign(word: str, values: np.ndarray) -> None:
        i = index.get(word)
        if i is not None and source[i] < 2:
            matrix[i] = torch.from_numpy(np.array(values, dtype=np.float32))
            source[i] = 2
            return
        i = index.get(word.lower())
        if i is not None and source[i] == 0:
            matrix[i] = torch.from_numpy(np.array(values, dtype=np.float32))
            source[i] = 1

    def init(dim: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(int(seed))
        m = (torch.rand(len(vocab), dim, generator=gen, dtype=torch.float32) * 2 - 1) * unknown_range
        if vocab and vocab[0] == PAD:
            m[0] = 0
        return m

    with _open(path) as fh:
        first = fh.readline()
        header = _parse_header(first)
        if binary:
            if header is None:
                raise InputError(path, "binary word2vec needs a 'count dim' header line", line=1)
            n, dim = header
            matrix = init(dim)
            for word_b, vec_b in _iter_binary(fh, n, dim, path):
                n_read += 1
                assign(word_b.decode("utf-8", errors="replace"), np.frombuffer(vec_b, dtype="<f4"))
        else:
            dim = header[1] if header else len(first.rstrip(b"\r\n ").split(b" ")) - 1
            if dim < 1:
                raise InputError(path, "cannot tell the vector size", line=1)
            matrix = init(dim)
            for lineno, raw in _iter_text_lines(fh, None if header else first):
                parts = raw.rstrip(b"\r\n ").split(b" ")
                if len(parts) == 1 and not parts[0]:
                    continue
                if len(parts) < dim + 1:
                    raise InputError(path, f"expected a word and {dim} values", line=lineno)
                word_b, parts = b" ".join(parts[:-dim]), parts[-dim:]  # words may contain spaces
                n_read += 1
                try:
                    values = np.array([float(p) for p in parts], dtype=np.float32)
                except ValueError:
                    raise InputError(path, "non-numeric vector value", line=lineno) from None
                assign(word_b.decode("utf-8", errors="replace"), values)
            if header and n_read != header[0]:
                log.warning("%s: header announces %d vectors, read %d", path, header[0], n_read)
    special = sum(1 for w in (PAD, UNK) if w in index)
    exact, lower = int((source == 2).sum()), int((source == 1).sum())
    log.info(
        "read %d %d-d vectors from %s (%s): %d of %d vocabulary words found (%d exact, %d lower-cased), "
        "%d random U[-%g, %g]",
        n_read, dim, path, "binary" if binary else "text", exact + lower, len(vocab) - special, exact, lower,
        len(vocab) - special - exact - lower, unknown_range, unknown_range,
    )
    return matrix


def write_word2vec(path: str | Path, words: list[str], vectors: np.ndarray, binary: bool = True) -> None:
    """Write vectors in word2vec format (used for tests and demo assets)."""
    from kdprobe.io import atomic_path

    vectors = np.asarray(vectors, dtype=np.float32)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(f"{len(words)} {vectors.shape[1]}\n".encode())
        for w, v in zip(words, vectors):
            if binary:
                fh.write(w.encode("utf-8") + b" " + v.astype("<f4").tobytes() + b"\n")
            else:
                fh.write((w + " " + " ".join(repr(float(x)) for x in v) + "\n").encode("utf-8"))
