# kdprobe: task-specific distillation from BERT into small students, probed layer by layer.
# Targets: `snakemake --profile slurm results/probe/sara/bert_s.csv`; default: the whole study.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


# One rule file per stage, in pipeline order (docs/internals.md has the stage table).
# Each job's `conda:` names envs/kdprobe.yaml, which cannot hold kdprobe itself (src/kdprobe, installed with
# `pip install -e .`): create and activate it by hand (the file says how) and run Snakemake without `--sdm conda`.
include: "workflow/rules/common.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/offline.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/teacher.smk"
include: "workflow/rules/augment.smk"
include: "workflow/rules/transfer.smk"
include: "workflow/rules/distil.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/summary.smk"
include: "workflow/rules/variants.smk"


rule all:
    default_target: True
    input:
        all_targets(),
