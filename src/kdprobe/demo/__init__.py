"""Generated stand-ins for the study's inputs, so the whole workflow runs on a CPU in minutes.

`write_demo_assets(out_dir, settings)` writes raw task data in the real formats, SentEval-format probing files,
tiny BERT and GPT-2 checkpoints with tokenizers trained on the demo corpus, and a word2vec binary.
"""

from .assets import write_demo_assets

__all__ = ["write_demo_assets"]
