"""Generated stand-ins for the study's inputs, so the whole workflow runs on a CPU in minutes.

`write_demo_data(out_dir, settings)` writes raw task data in the real formats, SentEval-format probing files and
the corpus of all their sentences; `write_demo_model(kind, out, corpus, settings)` trains a tiny BERT or GPT-2
(with a tokenizer trained on the corpus) or a word2vec binary; `write_demo_assets` does all of it.
"""

from kdprobe.demo.assets import read_corpus, write_demo_assets, write_demo_data, write_demo_model

__all__ = ["read_corpus", "write_demo_assets", "write_demo_data", "write_demo_model"]
