# Fetch raw data and models once, into exactly the paths the rest of the config reads (config `sources:`).
#
# One rule per entry, named fetch_<key> (fetch_cola, fetch_sst2, fetch_sara, fetch_probing,
# fetch_bert_large_uncased, fetch_gpt2_medium). They are local rules: they run where Snakemake itself runs (the
# login node, which has internet) and never go to a compute node, which then only reads the files. An entry
# with `names` (probing) is one rule with a `{name}` wildcard, one job per name.
#
# Models: a model setting that is a path a rule produces makes Snakemake fetch it first. With
#     teacher.model: resources/models/bert-large-uncased
#     gpt2.model: resources/models/gpt2-medium
# and the teacher/gpt2 rules taking the model directory as an input when it is a local path (common.smk's
# `model_inputs`), `snakemake results/teacher/cola/metrics.json` runs fetch_bert_large_uncased first, once.
# With a hub id there (`bert-large-uncased`) these rules are simply not needed; with a directory you already
# have, neither.
#
# Air-gapped: replace `url:` by `path:` (or `repo:`/`revision:` by `path:`) in the entry and the rule copies
# and verifies the local file instead; or point the setting at your files directly and drop the entry.
# Without Snakemake: `python workflow/scripts/fetch.py [--config config/config.yaml] [KEY ...]`.
import re

from kdprobe.errors import ConfigError
from kdprobe.fetch import DEFAULT_CACHE_DIR, parse_sources
from snakemake.exceptions import WorkflowError

try:
    FETCH_SOURCES = parse_sources(config.get("sources"))
except ConfigError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None


def _fetch_param(src, field):
    """A source field as a rule param; for entries with `names`, a function of the `{name}` wildcard."""
    if not src.names:
        return getattr(src, field)
    return lambda wildcards: getattr(
        src.for_name(dict(wildcards.items())["name"]), field
    )


def _fetch_outputs(src):
    outputs = src.outputs()
    return [directory(outputs[0])] if src.kind == "model" else outputs


def _fetch_constraints(src):
    return {"name": "|".join(re.escape(n) for n in src.names)} if src.names else {}


def _fetch_log(src):
    return (
        f"logs/fetch/{src.key}/{{name}}.log"
        if src.names
        else f"logs/fetch/{src.key}.log"
    )


for _src in FETCH_SOURCES:

    rule:
        name:
            _src.rule_name
        output:
            _fetch_outputs(_src),
        log:
            _fetch_log(_src),
        wildcard_constraints:
            **_fetch_constraints(_src),
        localrule: True
        conda:
            "../../envs/kdprobe.yaml"
        threads: rule_threads(_src.rule_name, "fetch")
        resources:
            **rule_resources(_src.rule_name, "fetch"),
        params:
            key=_src.key,
            section=_src.section,
            url=_fetch_param(_src, "url"),
            path=_fetch_param(_src, "path"),
            sha256=_fetch_param(_src, "sha256"),
            git_blob=_fetch_param(_src, "git_blob"),
            repo=_src.repo,
            revision=_src.revision,
            extract=_fetch_param(_src, "extract"),
            cache_dir=DEFAULT_CACHE_DIR,
        script:
            "../scripts/fetch.py"
