"""Everything the demo configuration reads, generated from one seed.

`write_demo_data` writes the text (raw task files, SentEval probing files and `corpus.txt`, every sentence of
both); `write_demo_model` trains one model on that corpus (`bert`, `gpt2` or `word2vec`). The workflow runs them as
separate rules (`workflow/rules/demo.smk`), so the models train side by side; `write_demo_assets` runs all of them.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from kdprobe.errors import ConfigError
from kdprobe.io import write_text
from kdprobe.demo.probing import write_probing
from kdprobe.demo.tasks import write_raw

log = logging.getLogger(__name__)

#: The demo's models (each `models.write_<kind>`), by the `demo` config key that holds their settings. `models`
#: (torch, transformers, gensim) is imported only to train one, so writing the text needs none of them.
MODELS = ("bert", "gpt2", "word2vec")
#: The settings each part reads: `demo.<key>.<subkey>`.
REQUIRED = {
    "data": {"seed": (), "sentences": ("cola", "sst2", "sara"), "probing_sentences": ()},
    "bert": {"seed": (), "bert": ("hidden", "layers", "heads", "intermediate", "vocab_size", "pretrain_steps")},
    "gpt2": {"seed": (), "gpt2": ("hidden", "layers", "heads", "vocab_size")},
    "word2vec": {"seed": (), "word2vec": ("dim", "epochs")},
}


def _check(settings: dict, part: str) -> None:
    for key, subkeys in REQUIRED[part].items():
        if key not in settings:
            raise ConfigError(f"demo.{key}", "missing")
        for sub in subkeys:
            if sub not in settings[key]:
                raise ConfigError(f"demo.{key}.{sub}", "missing")


def write_demo_data(out_dir: str | Path, settings: dict) -> list[str]:
    """Write `raw/cola/{train,dev}.tsv`, `raw/sst2/{train,dev}.tsv`, `raw/sara/nlu.md` (real formats),
    `probing/*.txt` (the 10 SentEval files) and `corpus.txt` (every sentence above, one a line) under `out_dir`,
    deterministically from `settings['seed']`; each file atomically. Returns the corpus."""
    _check(settings, "data")
    out_dir, seed = Path(out_dir), int(settings["seed"])
    corpus = write_raw(out_dir / "raw", settings["sentences"], seed)
    corpus += write_probing(out_dir / "probing", int(settings["probing_sentences"]), seed)
    write_text(out_dir / "corpus.txt", "".join(f"{s}\n" for s in corpus))
    log.info("corpus: %d sentences", len(corpus))
    return corpus


def read_corpus(path: str | Path) -> list[str]:
    """The sentences of a `corpus.txt` written by `write_demo_data`."""
    return Path(path).read_text(encoding="utf-8").split("\n")[:-1]


def write_demo_model(kind: str, out: str | Path, corpus: list[str], settings: dict) -> dict:
    """Train the demo's `kind` model (`bert`, `gpt2` or `word2vec`) on `corpus` from `settings[kind]` and
    `settings['seed']`; write it to `out` (a Hugging Face directory, or the word2vec binary). Returns a summary."""
    if kind not in MODELS:
        raise ConfigError("demo", f"unknown demo model {kind!r}; choose one of {sorted(MODELS)}")
    _check(settings, kind)
    from kdprobe.demo import models

    return getattr(models, f"write_{kind}")(out, corpus, settings[kind], int(settings["seed"]))


def write_demo_assets(out_dir: str | Path, settings: dict) -> dict:
    """All the demo inputs under `out_dir`: `write_demo_data`, then `models/bert/`, `models/gpt2/` and
    `word2vec.bin` from its corpus. Returns a summary."""
    start = time.perf_counter()
    out_dir = Path(out_dir)
    corpus = write_demo_data(out_dir, settings)
    paths = {"bert": out_dir / "models" / "bert", "gpt2": out_dir / "models" / "gpt2",
             "word2vec": out_dir / "word2vec.bin"}
    summary = {"corpus_sentences": len(corpus),
               **{kind: write_demo_model(kind, path, corpus, settings) for kind, path in paths.items()}}
    log.info("demo assets in %s after %.1f s", out_dir, time.perf_counter() - start)
    return summary
