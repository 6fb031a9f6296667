"""Train one demo model on the demo corpus: `kdprobe.demo.write_demo_model` (rules `demo_bert`, `demo_gpt2`,
`demo_word2vec`).

Reads `input.corpus`; `params.kind` is the model (`bert`, `gpt2`, `word2vec`), `params.settings` the `demo:`
settings it depends on (`seed` and `demo.<kind>`); writes `output[0]`.
"""

from kdprobe.demo import read_corpus, write_demo_model
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

run(
    snakemake,
    lambda device: write_demo_model(
        snakemake.params.kind, snakemake.output[0], read_corpus(snakemake.input.corpus),
        dict(snakemake.params.settings),
    ),
)
