"""Build one stand-in of the offline study (rules of workflow/rules/offline.smk), by `params.kind`:

- `teacher`: `kdprobe.offline.export_teacher(output[0])`;
- `corpus`: `write_corpus` of the prepared training sets (`input`, named by task) to `output[0]`;
- `gpt2`: `pretrain_gpt2` on `input.corpus` with `params.settings` (`offline.gpt2`) and `params.seed`, writing
  `output.model` and `output.curve` (resumable state `params.state`);
- `probing`: `write_probing` from the sentences of `input.sentences` (a raw file in `params.format`) for
  `params.tasks`, sizes `params.sizes`, seed `params.seed`, one output per task (named by task).
"""

from kdprobe.data.prepare import load_examples
from kdprobe.offline import export_teacher, pretrain_gpt2, write_corpus, write_probing
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive
p, inp, out = snakemake.params, snakemake.input, snakemake.output


def build(device):
    if p.kind == "teacher":
        return export_teacher(out[0])
    if p.kind == "corpus":
        return write_corpus(dict(inp.items()), out[0])
    if p.kind == "gpt2":
        return pretrain_gpt2(inp.corpus, dict(p.settings), int(p.seed), out.model, out.curve, p.state, device)
    if p.kind == "probing":
        sentences = [ex.sentence for ex in load_examples(p.format, inp.sentences)]
        return write_probing(sentences, list(p.tasks), dict(p.sizes), int(p.seed), dict(out.items()),
                             source=inp.sentences)
    raise ValueError(f"unknown offline kind {p.kind!r}")


run(snakemake, build)
