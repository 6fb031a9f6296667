# Config access, input functions and resources shared by every rule file.
import os
import re
from pathlib import Path

from kdprobe import cluster as kdcluster
from kdprobe import config as kdconfig
from kdprobe import transfer_sets as kdtransfer
from kdprobe import variants as kdvariants
from kdprobe.data.prepare import companion_files, raw_files
from kdprobe.errors import ConfigError
from kdprobe.report import reproduction as kdreproduction
from snakemake.exceptions import WorkflowError

try:
    kdconfig.validate(config, workflow.source_path("../schemas/config.schema.yaml"))
    # a model path that neither exists nor is made by a rule fails now, not when its first job starts
    kdconfig.check_model_paths(config)
    kdconfig.check_probe_layers(config)
    # students.bert_s.init against the teacher's config.json, when local
    kdconfig.check_student_init(config)
    # students.<student>.loss as a list of terms, against the teacher's config.json when local
    kdconfig.check_loss_terms(config)
    kdvariants.check_variants(
        config, workflow.source_path("../schemas/config.schema.yaml")
    )
except ConfigError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None

TASKS = list(config["tasks"])
STUDENTS = list(config["students"])
MODELS = ["teacher", *STUDENTS]
#: The embed. baselines ({student}_embed: a student's token table before training), per task (probe.embed_baseline)
EMBED_MODELS = [f"{student}_embed" for student in STUDENTS]
#: The random-encoder baselines (probe.random_baseline): each student with random weights, per task
#: ({student}_random, rule random_student), and the teacher's architecture once, in scope pretrained (rule
#: random_teacher)
RANDOM_MODELS = [f"{student}_random" for student in STUDENTS]
RANDOM_TEACHER = "teacher_random"
#: The student each baseline ({student}_embed, {student}_random) stands beside.
STUDENT_OF = {
    f"{student}_{kind}": student for student in STUDENTS for kind in ("embed", "random")
}
PROBE_TASKS = list(config["probe"]["tasks"])
SWEEPS = sorted(
    {name for task in TASKS for name in kdvariants.enabled_sweeps(config, task)}
)
ABLATIONS = sorted(
    {name for task in TASKS for name in kdvariants.enabled_ablations(config, task)}
)


def exactly(names):
    """A wildcard constraint matching exactly one of `names` (nothing when there are none)."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


wildcard_constraints:
    task="|".join(TASKS),
    student="|".join(STUDENTS),
    model="|".join(MODELS),
    scope="|".join([*TASKS, "pretrained"]),
    probe_task="|".join(PROBE_TASKS),
    shard=r"\d+",
    part=r"train|(?:(?:rules|random_words)/)?shard\d+",
    kind="|".join(kdtransfer.GENERATED_KINDS),
    variant=exactly(kdvariants.variant_names(config)),
    sweep=exactly(SWEEPS),
    ablation=exactly(ABLATIONS),


#: The rules that `use rule` makes from a parent (predict.smk, variants.smk); each falls back to its parent's
#: `resources` entry (tests/test_registries.py checks this against the rule files).
USE_RULE_PARENTS = {
    "predict_test": "predict",
    "teacher_variant": "teacher",
    "distil_variant": "distil",
    "predict_variant": "predict",
    "predict_test_variant": "predict",
    "probe_variant": "probe",
    "plot_probing_selectivity": "plot_probing",
    "plot_probing_mdl": "plot_probing",
}


def resource_spec(rule, stage=None):
    """`config.resources.<rule>` over its `use rule` parent's entry, over `resources.<stage>` (the rule file's
    stage, for rules that share one entry: summary, analysis, demo, fetch, offline), over the site entry of GPU
    or CPU rules (`gpu_jobs`, `cpu_jobs`), over `resources.default` (`kdprobe.cluster.resource_spec`).
    """
    spec, _ = kdcluster.resource_spec(
        config["resources"], rule, stage, USE_RULE_PARENTS.get(rule)
    )
    return spec


def rule_resources(rule, stage=None):
    """Resources of `rule` (`kdprobe.cluster.rule_resources`): mem_mb and runtime grow with the attempt number,
    runtime up to `max_runtime`; the GPU request and the SLURM site settings (partition, account, qos, ...).
    """
    try:
        return kdcluster.rule_resources(
            config["resources"], rule, stage, USE_RULE_PARENTS.get(rule)
        )
    except ConfigError as err:
        raise WorkflowError(f"invalid configuration: {err}") from None


def rule_threads(rule, stage=None):
    return resource_spec(rule, stage)["threads"]


def local_model(value):
    """A model setting is a file input when it is a local path (`kdconfig.is_local_model`); else a hub id."""
    return value if kdconfig.is_local_model(value) else None


def model_inputs(value):
    path = local_model(value)
    return {"base": path} if path else {}


def data_files(task):
    return {
        split: f"resources/data/{task}/{split}.tsv"
        for split in ("train", "dev", "test")
    } | {"labels": f"resources/data/{task}/labels.txt"}


def n_shards(task):
    return kdconfig.section(config, task, "augment")["shards"]


def augment_dir(task, kind):
    """Where the augmented sentences of transfer-set `kind` live: gpt2's in results/augment/{task}/ (as the
    thesis), the generated kinds' in results/augment/{task}/{kind}/."""
    return (
        f"results/augment/{task}"
        if kind == "gpt2"
        else f"results/augment/{task}/{kind}"
    )


def augment_shards(task, kind):
    """The augmentation shards of transfer-set `kind` (none: none)."""
    if kind == "none":
        return []
    return [
        f"{augment_dir(task, kind)}/shard{i}.parquet" for i in range(n_shards(task))
    ]


def transfer_parts(task, kind="gpt2"):
    """The transfer-set files (with the teacher's logits) of `kind`: the training set's, then each shard's."""
    return [f"results/transfer/{task}/train.parquet"] + [
        path.replace("results/augment/", "results/transfer/", 1)
        for path in augment_shards(task, kind)
    ]


def part_name(task, path):
    """The `{part}` of a transfer-set file: `train`, `shard{i}` or `{kind}/shard{i}`."""
    return path.removeprefix(f"results/transfer/{task}/").removesuffix(".parquet")


def run_settings(task, model, variant=None):
    """The settings of a student's run: its own, or one of its variants'."""
    if variant:
        return variant_settings(task, model, variant)
    return kdconfig.student_settings(config, task, model)


def run_transfer(task, student, variant=None):
    """The `kdprobe.transfer_sets.TransferKind` of a student's run (students.<student>.transfer)."""
    try:
        return kdtransfer.transfer_kind(
            run_settings(task, student, variant), f"students.{student}.transfer"
        )
    except ConfigError as err:
        raise WorkflowError(f"invalid configuration: {err}") from None


def used_transfers(task):
    """Every `TransferKind` a run of `task` uses (students, their extra seeds, sweep and ablation points)."""
    runs = [run_transfer(task, student) for student in STUDENTS]
    runs += [
        run_transfer(task, v.model, v.name)
        for v in kdvariants.all_variants(config, task)
        if v.model != "teacher"
    ]
    return list(dict.fromkeys(runs))


def used_kinds(task):
    """The transfer-set kinds some run of `task` uses, in `kdprobe.transfer_sets.KINDS` order."""
    kinds = {t.kind for t in used_transfers(task)}
    return [kind for kind in kdtransfer.KINDS if kind in kinds]


def used_parts(task):
    """The transfer-set files of every kind some run of `task` uses, each once."""
    return list(
        dict.fromkeys(
            p for kind in used_kinds(task) for p in transfer_parts(task, kind)
        )
    )


def run_dir(task, model, variant=None):
    """The directory of a training run: the model's own, or one of its variants' (kdprobe.variants) below it."""
    base = (
        f"results/teacher/{task}"
        if model == "teacher"
        else f"results/students/{task}/{model}"
    )
    return f"{base}/{variant}" if variant else base


def model_dir(task, model, variant=None):
    return f"{run_dir(task, model, variant)}/model"


def variant_settings(task, model, variant):
    """The settings of one extra seed or sweep point (kdprobe.variants.find_variant)."""
    try:
        return kdvariants.find_variant(config, task, model, variant).settings
    except ConfigError as err:
        raise WorkflowError(str(err)) from None


def seed_runs(task, model):
    """[[seed, variant name or None (the model's own run)], ...]: every seed of `model` on `task`, its own first."""
    own = kdvariants.seeds_of(config, task, model)[0]
    extra = kdvariants.seed_variants(config, task, model)
    return [[own, None]] + [[v.values["seed"], v.name] for v in extra]


def extra_seeds(task, model):
    return [variant for _, variant in seed_runs(task, model) if variant]


def sweep_runs(task, sweep):
    return kdvariants.sweep_variants(config, task, sweep)


def sweep_student(sweep):
    return config["sweeps"][sweep]["student"]


def ablation_runs(task, ablation):
    """Every point x seed of `ablation` on `task` (kdprobe.variants.ablation_variants), each point's seeds together."""
    return kdvariants.ablation_variants(config, task, ablation)


def ablation_files(task, ablation, pattern):
    """`pattern` (with {task}, {model}, {variant}) for every run of `ablation` on `task`, in run order."""
    return [
        pattern.format(task=task, model=v.model, variant=v.name)
        for v in ablation_runs(task, ablation)
    ]


def ablation_run_params(task, ablation):
    """[{point, labels, seed}] of every run of `ablation` on `task`, in run order (the summaries' params)."""
    return [
        {
            "point": kdvariants.sweep_label(labels),
            "labels": labels,
            "seed": v.values["seed"],
        }
        for v in ablation_runs(task, ablation)
        for labels in [{k: x for k, x in v.values.items() if k != "seed"}]
    ]


def ablation_reference(ablation):
    """The label of `ablation`'s reference point (kdprobe.variants.reference_point)."""
    entry = config["ablations"][ablation]
    return kdvariants.sweep_label(kdvariants.reference_point(entry, ablation))


def ablation_probed(ablation):
    return bool(config["ablations"][ablation].get("probe", False))


#: The prediction analysis's files that stand for the whole of it (rule analyse_predictions writes them all).
ANALYSIS_TARGETS = (
    "summary.md",
    "confidence.png",
    "reliability.png",
    "agreement.png",
    "overlap.png",
    "correlation.png",
    "average_confidence.png",
    "classes.png",
)


def all_targets():
    targets = []
    for task in TASKS:
        targets += [f"results/predictions/{task}/{model}.tsv" for model in MODELS]
        targets += [f"results/probe/{task}/{model}.csv" for model in MODELS]
        targets += [f"results/probe/{task}/{model}.csv" for model in embed_models(task)]
        targets += [
            f"results/probe/{task}/{model}.csv" for model in random_models(task)
        ]
    targets.append("results/probe/pretrained/teacher.csv")
    if random_teacher(TASKS):
        targets.append(f"results/probe/pretrained/{RANDOM_TEACHER}.csv")
    targets += [f"results/summary/{task}.csv" for task in TASKS]
    targets += [f"results/summary/transfer/{task}.csv" for task in TASKS]
    targets += [
        f"results/summary/{name}"
        for name in (
            "study.csv",
            "study.png",
            "cost.csv",
            "cost.png",
            "reproduction.csv",
            "reproduction.png",
        )
    ]
    for task in TASKS:
        targets += [f"results/analysis/{task}/{name}" for name in ANALYSIS_TARGETS]
        if sentences_to_score(task):
            targets.append(f"results/analysis/{task}/scored_sentences.csv")
        targets.append(f"results/plots/probe/{task}.png")
        if config["probe"]["control"]:
            targets.append(f"results/plots/probe/{task}.selectivity.png")
        if config["probe"]["mdl"]:
            targets.append(f"results/plots/probe/{task}.mdl.png")
        targets += [
            f"results/plots/curves/{task}/{stage}.png"
            for stage in ("teacher", "gpt2", "students")
            if stage != "gpt2" or "gpt2" in used_kinds(task)
        ]
    targets += [
        "results/plots/probe/overview.png",
        "results/plots/probe/best_layers.csv",
    ]
    for task in TASKS:
        targets.append(f"results/summary/seeds/{task}.csv")
        for name in kdvariants.enabled_sweeps(config, task):
            targets += [
                f"results/sweeps/{task}/{name}{suffix}"
                for suffix in (".csv", ".png", "_curves.png")
            ]
        for name in kdvariants.enabled_ablations(config, task):
            targets += [f"results/ablations/{task}/{name}{s}" for s in (".csv", ".png")]
            if ablation_probed(name):
                targets.append(f"results/ablations/{task}/{name}.probe.csv")
    return targets


# --- input functions of data.smk ---


def raw_inputs(wildcards):
    """The task's raw files: a path, a list of paths, or a directory's files (`kdprobe.data.prepare.raw_files`), and
    the files their format reads beside them (`companion_files`: sara_thesis's int_to_intent.tsv), so a change to
    any of them reruns prepare_data."""
    source = kdconfig.section(config, wildcards.task, "data")
    inputs = {
        key: [str(path) for path in raw_files(source["format"], source[key])]
        for key in ("train", "dev", "test")
        if source.get(key)
    }
    companions = companion_files(
        source["format"], [p for paths in inputs.values() for p in paths]
    )
    return inputs | ({"companions": [str(p) for p in companions]} if companions else {})


# --- input functions of teacher.smk ---


def teacher_inputs(wildcards):
    settings = kdconfig.section(config, wildcards.task, "teacher")
    return data_files(wildcards.task) | model_inputs(settings["model"])


# --- input functions of augment.smk ---


def gpt2_inputs(wildcards):
    settings = kdconfig.section(config, wildcards.task, "gpt2")
    return {"train": f"resources/data/{wildcards.task}/train.tsv"} | model_inputs(
        settings["model"]
    )


def generated_shard_settings(wildcards):
    """What one shard of a generated transfer set depends on (`kdconfig.generated_shard_settings`)."""
    try:
        return kdconfig.generated_shard_settings(
            config, wildcards.task, wildcards.kind, int(wildcards.shard)
        )
    except ConfigError as err:
        raise WorkflowError(str(err)) from None


def shard_settings(wildcards):
    """What one shard's sentences depend on (`kdconfig.shard_settings`): its size and seed, and every sampling
    setting of the `augment` section."""
    try:
        return kdconfig.shard_settings(config, wildcards.task, int(wildcards.shard))
    except ConfigError as err:
        raise WorkflowError(str(err)) from None


# --- input functions of transfer.smk ---


def logits_source(wildcards):
    if wildcards.part == "train":
        return f"resources/data/{wildcards.task}/train.tsv"
    return f"results/augment/{wildcards.task}/{wildcards.part}.parquet"


# --- input functions of distil.smk ---


def student_inputs(wildcards):
    variant = getattr(wildcards, "variant", None)
    settings = run_settings(wildcards.task, wildcards.student, variant)
    kind = run_transfer(wildcards.task, wildcards.student, variant).kind
    inputs = data_files(wildcards.task) | {
        "transfer": transfer_parts(wildcards.task, kind),
        "teacher": f"results/teacher/{wildcards.task}/model",
    }
    if settings.get("embeddings") == "word2vec":
        if not settings.get("word2vec"):
            raise WorkflowError(
                f"students.{wildcards.student}.word2vec: embeddings: word2vec needs a word2vec file "
                f"(for task {wildcards.task})"
            )
        inputs["word2vec"] = settings["word2vec"]
    init = settings.get("init") or {}
    if init.get("from") == "pretrained" and init.get("model"):
        # its content keys the run (kdprobe.student_init)
        inputs["init_model"] = init["model"]
    return inputs


# --- input functions of probe.smk ---


def embed_models(task):
    """The embed. baselines probed for `task` (`probe.embed_baseline`: true, false or a list of tasks)."""
    return EMBED_MODELS if kdconfig.embed_baseline(config, task) else []


def random_models(task):
    """The random students probed for `task` (`probe.random_baseline`: true, false or a list of tasks)."""
    return RANDOM_MODELS if kdconfig.random_baseline(config, task) else []


def random_teacher(tasks):
    """Whether the random teacher is probed (once, scope pretrained): when any of `tasks` has random baselines."""
    return any(kdconfig.random_baseline(config, task) for task in tasks)


def probe_kind(wildcards):
    """The model kind a probe job loads (kdprobe.probe.encoders): a random model's is its architecture's."""
    if wildcards.scope == "pretrained":
        return "teacher" if wildcards.model == RANDOM_TEACHER else "pretrained"
    if wildcards.model in EMBED_MODELS:
        return "embed"
    return wildcards.model.removesuffix("_random")


def probe_model_path(wildcards):
    if wildcards.scope == "pretrained":
        if wildcards.model == RANDOM_TEACHER:
            return "results/random/teacher"
        if wildcards.model != "teacher":
            raise WorkflowError(
                "only the teacher and its random baseline have a pre-trained probe: "
                f"results/probe/pretrained/teacher.csv, results/probe/pretrained/{RANDOM_TEACHER}.csv"
            )
        return config["teacher"]["model"]
    if wildcards.model == RANDOM_TEACHER:
        raise WorkflowError(
            f"the random teacher is probed once: results/probe/pretrained/{RANDOM_TEACHER}.csv"
        )
    if wildcards.model in EMBED_MODELS:
        return embed_dir(wildcards.scope, wildcards.model)
    if wildcards.model in RANDOM_MODELS:
        return random_dir(wildcards.scope, wildcards.model)
    return model_dir(wildcards.scope, wildcards.model)


def embed_dir(task, model):
    """Where rule embed_model keeps the embed. baseline `model` ({student}_embed) of `task`."""
    return f"results/embed/{task}/{model.removesuffix('_embed')}"


def random_dir(task, model):
    """Where rule random_student keeps the random baseline `model` ({student}_random) of `task`."""
    return f"results/random/{task}/{model.removesuffix('_random')}"


def probe_inputs(wildcards):
    path = probe_model_path(wildcards)
    model = (
        model_inputs(path) if probe_kind(wildcards) == "pretrained" else {"model": path}
    )
    return model | {"data": probe_data()}


def probe_data():
    """The SentEval file of every probing task, in the config's order."""
    return [f"{config['probe']['data_dir']}/{name}.txt" for name in PROBE_TASKS]


# --- input functions of summary.smk ---

#: The rules whose benchmark files the cost table reads (their GPUs make the GPU-hours).
COST_RULES = (
    "teacher",
    "gpt2",
    "sample",
    "generate",
    "logits",
    "distil",
    "predict",
    "predict_test",
    "probe",
    "speed",
    "embed_model",
    "random_student",
    "random_teacher",
)


def rule_gpus(rule):
    """The GPUs `rule` asks for (`resource_spec`)."""
    return resource_spec(rule).get("gpu", 0)


def cost_benchmarks(wildcards):
    """The benchmark file of every job of the study (each written by Snakemake once its job has run, so asking for
    them makes the cost table wait for, and follow, every job they time)."""
    files = []
    for task in TASKS:
        files.append(f"logs/benchmarks/teacher/{task}.tsv")
        if "gpt2" in used_kinds(task):
            files.append(f"logs/benchmarks/gpt2/{task}.tsv")
            files += [
                f"logs/benchmarks/sample/{task}/shard{i}.tsv"
                for i in range(n_shards(task))
            ]
        files += [
            f"logs/benchmarks/generate/{task}/{kind}/shard{i}.tsv"
            for kind in used_kinds(task)
            if kind in kdtransfer.GENERATED_KINDS
            for i in range(n_shards(task))
        ]
        files += [
            f"logs/benchmarks/logits/{task}/{part_name(task, part)}.tsv"
            for part in used_parts(task)
        ]
        files += [
            f"logs/benchmarks/distil/{task}/{student}.tsv" for student in STUDENTS
        ]
        for model in MODELS:
            files += [
                f"logs/benchmarks/predict/{task}/{model}.tsv",
                f"logs/benchmarks/predict_test/{task}/{model}.tsv",
                f"logs/benchmarks/speed/{task}/{model}.tsv",
            ]
            files.append(f"logs/benchmarks/probe/{task}/{model}.tsv")
    files.append("logs/benchmarks/probe/pretrained/teacher.tsv")
    # the baselines: embed. tables and random encoders, built and probed
    if random_teacher(TASKS):
        files += [
            "logs/benchmarks/random_teacher/pretrained.tsv",
            f"logs/benchmarks/probe/pretrained/{RANDOM_TEACHER}.tsv",
        ]
    for task in TASKS:
        for model in embed_models(task) + random_models(task):
            builder = "embed_model" if model in EMBED_MODELS else "random_student"
            files += [
                f"logs/benchmarks/{builder}/{task}/{STUDENT_OF[model]}.tsv",
                f"logs/benchmarks/probe/{task}/{model}.tsv",
            ]
    for task in TASKS:
        for variant in kdvariants.all_variants(config, task):
            stage = "teacher" if variant.model == "teacher" else "distil"
            where = task if variant.model == "teacher" else f"{task}/{variant.model}"
            files.append(f"logs/benchmarks/{stage}/{where}/{variant.name}.tsv")
        for model in MODELS:
            for seed in extra_seeds(task, model):
                files += [
                    f"logs/benchmarks/{rule}/{task}/{model}/{seed}.tsv"
                    for rule in ("predict", "predict_test")
                ]
                if kdvariants.probe_seeds(config, task):
                    files.append(f"logs/benchmarks/probe/{task}/{model}/{seed}.tsv")
    return files


def reproduction_reference():
    """The file of `summary.reproduction.reference` (`thesis`: the thesis's figures, shipped with kdprobe)."""
    try:
        return str(
            kdreproduction.reference_file(
                config["summary"]["reproduction"]["reference"],
                "summary.reproduction.reference",
            )
        )
    except ConfigError as err:
        raise WorkflowError(f"invalid configuration: {err}") from None


def reproduction_benchmarks(wildcards):
    """The benchmark files of the jobs whose wall times the reference reports (`reproduction.timed_jobs`)."""
    jobs = kdreproduction.timed_jobs(cost_benchmarks(wildcards))
    return [path for paths in jobs.values() for path in paths]


# --- input functions of summary.smk (probing plots, curves) ---


def probing_plot_entries(tasks, seeds=True):
    """[scope, model kind, merged probe table, model directory or hub id, probe tables of its extra seeds] of the
    pre-trained teacher, of every model of `tasks` and of their embed. and random baselines (the random teacher, scope
    pretrained, when one of `tasks` has them; a random model's kind is its architecture's): the plots normalise
    layers by the depth of that model (kdprobe.report.probing_plots). The extra seeds' tables only with `seeds` and where `seeds.probe` asks for them.
    """
    entries = [
        [
            "pretrained",
            "pretrained",
            "results/probe/pretrained/teacher.csv",
            config["teacher"]["model"],
            [],
        ]
    ]
    for task in tasks:
        probed = seeds and kdvariants.probe_seeds(config, task)
        entries += [
            [
                task,
                model,
                f"results/probe/{task}/{model}.csv",
                model_dir(task, model),
                [
                    f"results/probe/{task}/{model}/{seed}.csv"
                    for seed in extra_seeds(task, model)
                    if probed
                ],
            ]
            for model in MODELS
        ]
        entries += [
            [
                task,
                "embed",
                f"results/probe/{task}/{model}.csv",
                embed_dir(task, model),
                [],
            ]
            for model in embed_models(task)
        ]
        entries += [
            [
                task,
                model.removesuffix("_random"),
                f"results/probe/{task}/{model}.csv",
                random_dir(task, model),
                [],
            ]
            for model in random_models(task)
        ]
    if random_teacher(tasks):
        entries.insert(
            1,
            [
                "pretrained",
                "teacher",
                f"results/probe/pretrained/{RANDOM_TEACHER}.csv",
                "results/random/teacher",
                [],
            ],
        )
    return entries


def probing_plot_files(tasks, seeds=True):
    """The files of `probing_plot_entries`: tables and model directories (a hub id is no file)."""
    files = []
    for scope, kind, table, model, seed_tables in probing_plot_entries(tasks, seeds):
        files += [table, model if kind != "pretrained" else local_model(model)]
        files += seed_tables
    return [path for path in files if path]


def student_losses(task):
    """Each student's loss and the one setting that shapes its values (soft_ce: temperature; mse: reduction)."""
    losses = {}
    for student in STUDENTS:
        settings = kdconfig.student_settings(config, task, student)
        key = "temperature" if settings["loss"] == "soft_ce" else "mse_reduction"
        losses[student] = {"loss": settings["loss"], key: settings[key]}
    return losses


def sentences_to_score(task):
    """The config's hand-written sentences of `task` (analysis.score_sentences.<task>; none: [])."""
    return config["analysis"].get("score_sentences", {}).get(task, [])


def analysis_report(path, caption, label):
    """`path` as a report item of the prediction analysis, with caption workflow/report/{caption}.rst."""
    return report(
        path,
        caption=f"../report/{caption}.rst",
        category="Prediction analysis",
        subcategory="{task}",
        # "content" first: the report offers later labels as toggles, never the first
        labels={"content": label, "task": "{task}"},
    )
