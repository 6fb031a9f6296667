"""`write_demo_assets`: everything the demo configuration reads, generated from one seed."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..errors import ConfigError
from ..io import write_text
from .models import write_bert, write_gpt2, write_word2vec
from .probing import write_probing
from .tasks import write_raw

log = logging.getLogger(__name__)

REQUIRED = {
    "seed": (),
    "sentences": ("cola", "sst2", "sara"),
    "probing_sentences": (),
    "bert": ("hidden", "layers", "heads", "intermediate", "vocab_size", "pretrain_steps"),
    "gpt2": ("hidden", "layers", "heads", "vocab_size"),
    "word2vec": ("dim", "epochs"),
}


def _check(settings: dict) -> None:
    for key, subkeys in REQUIRED.items():
        if key not in settings:
            raise ConfigError(f"demo.{key}", "missing")
        for sub in subkeys:
            if sub not in settings[key]:
                raise ConfigError(f"demo.{key}.{sub}", "missing")


def write_demo_assets(out_dir: str | Path, settings: dict) -> dict:
    """Write the demo inputs under `out_dir`, deterministically from `settings['seed']`:

    `raw/cola/{train,dev}.tsv`, `raw/sst2/{train,dev}.tsv`, `raw/sara/nlu.md` (real formats), `probing/*.txt`
    (the 10 SentEval files), `corpus.txt` (every sentence above, one a line), `models/bert/` and
    `models/gpt2/` (Hugging Face directories), `word2vec.bin`. Each file is written atomically. Returns a summary.
    """
    _check(settings)
    out_dir = Path(out_dir)
    seed = int(settings["seed"])
    start = time.perf_counter()
    corpus = write_raw(out_dir / "raw", settings["sentences"], seed)
    corpus += write_probing(out_dir / "probing", int(settings["probing_sentences"]), seed)
    write_text(out_dir / "corpus.txt", "".join(f"{s}\n" for s in corpus))
    log.info("corpus: %d sentences", len(corpus))
    summary = {
        "corpus_sentences": len(corpus),
        "bert": write_bert(out_dir / "models" / "bert", corpus, settings["bert"], seed),
        "gpt2": write_gpt2(out_dir / "models" / "gpt2", corpus, settings["gpt2"], seed),
        "word2vec": write_word2vec(out_dir / "word2vec.bin", corpus, settings["word2vec"], seed),
    }
    log.info("demo assets in %s after %.1f s", out_dir, time.perf_counter() - start)
    return summary
