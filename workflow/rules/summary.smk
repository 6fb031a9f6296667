# Stage summary: the study's answer as tables and plots. Per task the teacher and students side by side (scores on
# dev and test, shares of the teacher's, size, measured speed), study-wide, and what the study cost (from the jobs'
# benchmark files): results/summary/. Probing accuracy by relative layer depth: results/plots/probe/. Training
# curves of the teacher, GPT-2 and the students: results/plots/curves/{task}/. Each sweep: results/sweeps/{task}/.
# This run beside the thesis's reported figures: results/summary/reproduction.{csv,png}. The transfer sets of each
# task (sizes, duplicates, empty sentences, mean length): results/summary/transfer/{task}.csv. Cheap jobs (seconds): local
# rules, run where Snakemake runs. Library: kdprobe.report.


rule summary_task:
    input:
        labels="resources/data/{task}/labels.txt",
        dev="resources/data/{task}/dev.tsv",
        test="resources/data/{task}/test.tsv",
        predictions_dev=expand("results/predictions/{{task}}/{model}.tsv", model=MODELS),
        predictions_test=expand(
            "results/predictions/{{task}}/{model}.test.tsv", model=MODELS
        ),
        speed=expand("results/summary/speed/{{task}}/{model}.json", model=MODELS),
        # every extra seed's predictions, dev then test, in the order of params.seeds
        seed_predictions=lambda wc: [
            f"results/predictions/{wc.task}/{model}/{variant}{suffix}"
            for model in MODELS
            for variant in extra_seeds(wc.task, model)
            for suffix in (".tsv", ".test.tsv")
        ],
    output:
        table=report(
            "results/summary/{task}.csv",
            caption="../report/summary_task.rst",
            category="Summary",
            subcategory="{task}",
            labels={"content": "teacher and students (table)", "task": "{task}"},
        ),
        seeds=report(
            "results/summary/seeds/{task}.csv",
            caption="../report/summary_seeds.rst",
            category="Summary",
            subcategory="{task}",
            labels={"content": "every seed (table)", "task": "{task}"},
        ),
    log:
        "logs/summary_task/{task}.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("summary_task", "summary")
    resources:
        **rule_resources("summary_task", "summary"),
    params:
        models=MODELS,
        # {model: [[seed, variant name or None for its own run], ...]}
        seeds=lambda wc: {model: seed_runs(wc.task, model) for model in MODELS},
    script:
        "../scripts/summary_task.py"


rule transfer_summary:
    input:
        train="resources/data/{task}/train.tsv",
        shards=lambda wc: [
            path
            for kind in used_kinds(wc.task)
            for path in augment_shards(wc.task, kind)
        ],
    output:
        report(
            "results/summary/transfer/{task}.csv",
            caption="../report/summary_transfer.rst",
            category="Summary",
            subcategory="{task}",
            labels={"content": "transfer sets (table)", "task": "{task}"},
        ),
    log:
        "logs/transfer_summary/{task}.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("transfer_summary", "summary")
    resources:
        **rule_resources("transfer_summary", "summary"),
    params:
        # {kind: its augmentation shards} and {kind: the fractions its runs use}, for every kind some run uses
        shards=lambda wc: {
            kind: augment_shards(wc.task, kind) for kind in used_kinds(wc.task)
        },
        fractions=lambda wc: {
            kind: sorted(
                {t.fraction for t in used_transfers(wc.task) if t.kind == kind}
            )
            for kind in used_kinds(wc.task)
        },
    script:
        "../scripts/transfer_summary.py"


rule summary_study:
    input:
        expand("results/summary/{task}.csv", task=TASKS),
    output:
        table=report(
            "results/summary/study.csv",
            caption="../report/summary_study.rst",
            category="Summary",
            subcategory="study",
            labels={"content": "all tasks (table)", "task": "all"},
        ),
        plot=report(
            "results/summary/study.png",
            caption="../report/summary_study_plot.rst",
            category="Summary",
            subcategory="study",
            labels={"content": "score against size and latency", "task": "all"},
        ),
    log:
        "logs/summary_study.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("summary_study", "summary")
    resources:
        **rule_resources("summary_study", "summary"),
    script:
        "../scripts/summary_study.py"


rule summary_cost:
    input:
        cost_benchmarks,
    output:
        table=report(
            "results/summary/cost.csv",
            caption="../report/summary_cost.rst",
            category="Summary",
            subcategory="cost",
            labels={"content": "cost per stage and task (table)", "task": "all"},
        ),
        plot=report(
            "results/summary/cost.png",
            caption="../report/summary_cost_plot.rst",
            category="Summary",
            subcategory="cost",
            labels={"content": "cost per stage", "task": "all"},
        ),
    log:
        "logs/summary_cost.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("summary_cost", "summary")
    resources:
        **rule_resources("summary_cost", "summary"),
    params:
        gpus={rule: rule_gpus(rule) for rule in COST_RULES},
    script:
        "../scripts/summary_cost.py"


# How close this run came to the thesis (summary.reproduction.reference `thesis`) or another reference (the
# demo's own figures): each reported figure beside this run's, the difference, flagged beyond the tolerance.
rule summary_reproduction:
    input:
        reference=reproduction_reference(),
        study="results/summary/study.csv",
        # the benchmark files of the jobs the reference times (teacher, GPT-2, sampling, logits, the students)
        benchmarks=reproduction_benchmarks,
    output:
        table=report(
            "results/summary/reproduction.csv",
            caption="../report/summary_reproduction.rst",
            category="Summary",
            subcategory="reproduction",
            labels={"content": "this run beside the reference (table)", "task": "all"},
        ),
        plot=report(
            "results/summary/reproduction.png",
            caption="../report/summary_reproduction_plot.rst",
            category="Summary",
            subcategory="reproduction",
            labels={"content": "distance from the reference", "task": "all"},
        ),
    log:
        "logs/summary_reproduction.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("summary_reproduction", "summary")
    resources:
        **rule_resources("summary_reproduction", "summary"),
    params:
        tolerance=config["summary"]["reproduction"]["tolerance"],
    script:
        "../scripts/summary_reproduction.py"


rule plot_probing:
    input:
        lambda wc: probing_plot_files([wc.task]),
    output:
        report(
            "results/plots/probe/{task}.png",
            caption="../report/probe_task.rst",
            category="Probing",
            subcategory="{task}",
            labels={"content": "accuracy by relative layer depth", "task": "{task}"},
        ),
    log:
        "logs/plot_probing/{task}.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("plot_probing", "summary")
    resources:
        **rule_resources("plot_probing", "summary"),
    params:
        entries=lambda wc: probing_plot_entries([wc.task]),
        figure="accuracy",
    script:
        "../scripts/plot_probing.py"


# The same models' tables (not their extra seeds') drawn as selectivity (probe.control) and as online-code
# compression (probe.mdl) by layer.
use rule plot_probing as plot_probing_selectivity with:
    input:
        lambda wc: probing_plot_files([wc.task], seeds=False),
    output:
        report(
            "results/plots/probe/{task}.selectivity.png",
            caption="../report/probe_selectivity.rst",
            category="Probing",
            subcategory="{task}",
            labels={
                "content": "selectivity by relative layer depth",
                "task": "{task}",
            },
        ),
    log:
        "logs/plot_probing/{task}.selectivity.log",
    params:
        entries=lambda wc: probing_plot_entries([wc.task], seeds=False),
        figure="selectivity",


use rule plot_probing as plot_probing_mdl with:
    input:
        lambda wc: probing_plot_files([wc.task], seeds=False),
    output:
        report(
            "results/plots/probe/{task}.mdl.png",
            caption="../report/probe_mdl.rst",
            category="Probing",
            subcategory="{task}",
            labels={
                "content": "online code by relative layer depth",
                "task": "{task}",
            },
        ),
    log:
        "logs/plot_probing/{task}.mdl.log",
    params:
        entries=lambda wc: probing_plot_entries([wc.task], seeds=False),
        figure="mdl",


rule plot_probing_overview:
    input:
        probing_plot_files(TASKS, seeds=False),
    output:
        plot=report(
            "results/plots/probe/overview.png",
            caption="../report/probe_overview.rst",
            category="Probing",
            subcategory="all tasks",
            labels={"content": "best-layer accuracy (heatmap)", "task": "all"},
        ),
        table=report(
            "results/plots/probe/best_layers.csv",
            caption="../report/probe_best_layers.rst",
            category="Probing",
            subcategory="all tasks",
            labels={"content": "best layers (table)", "task": "all"},
        ),
    log:
        "logs/plot_probing/overview.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("plot_probing_overview", "summary")
    resources:
        **rule_resources("plot_probing_overview", "summary"),
    params:
        entries=probing_plot_entries(TASKS, seeds=False),
    script:
        "../scripts/plot_probing.py"


rule plot_teacher_curve:
    input:
        "results/teacher/{task}/curve.csv",
    output:
        report(
            "results/plots/curves/{task}/teacher.png",
            caption="../report/curves_teacher.rst",
            category="Training curves",
            subcategory="{task}",
            labels={"content": "teacher", "task": "{task}"},
        ),
    log:
        "logs/plot_curves/{task}/teacher.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("plot_teacher_curve", "summary")
    resources:
        **rule_resources("plot_teacher_curve", "summary"),
    params:
        stage="teacher",
    script:
        "../scripts/plot_curves.py"


rule plot_gpt2_curve:
    input:
        "results/gpt2/{task}/curve.csv",
    output:
        report(
            "results/plots/curves/{task}/gpt2.png",
            caption="../report/curves_gpt2.rst",
            category="Training curves",
            subcategory="{task}",
            labels={"content": "GPT-2", "task": "{task}"},
        ),
    log:
        "logs/plot_curves/{task}/gpt2.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("plot_gpt2_curve", "summary")
    resources:
        **rule_resources("plot_gpt2_curve", "summary"),
    params:
        stage="gpt2",
    script:
        "../scripts/plot_curves.py"


rule plot_student_curves:
    input:
        **{
            student: f"results/students/{{task}}/{student}/curve.csv"
            for student in STUDENTS
        },
        teacher="results/teacher/{task}/metrics.json",
        # each student's extra seeds, in the order of params.seeds
        seeds=lambda wc: [
            f"{run_dir(wc.task, student, seed)}/curve.csv"
            for student in STUDENTS
            for seed in extra_seeds(wc.task, student)
        ],
    output:
        report(
            "results/plots/curves/{task}/students.png",
            caption="../report/curves_students.rst",
            category="Training curves",
            subcategory="{task}",
            labels={"content": "students", "task": "{task}"},
        ),
    log:
        "logs/plot_curves/{task}/students.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("plot_student_curves", "summary")
    resources:
        **rule_resources("plot_student_curves", "summary"),
    params:
        stage="students",
        # what names each student's loss on its axis
        losses=lambda wc: student_losses(wc.task),
        seeds=lambda wc: {
            student: extra_seeds(wc.task, student) for student in STUDENTS
        },
    script:
        "../scripts/plot_curves.py"


rule sweep_summary:
    input:
        base=lambda wc: f"{run_dir(wc.task, sweep_student(wc.sweep))}/metrics.json",
        metrics=lambda wc: [
            f"{run_dir(wc.task, v.model, v.name)}/metrics.json"
            for v in sweep_runs(wc.task, wc.sweep)
        ],
        curves=lambda wc: [
            f"{run_dir(wc.task, v.model, v.name)}/curve.csv"
            for v in sweep_runs(wc.task, wc.sweep)
        ],
    output:
        table=report(
            "results/sweeps/{task}/{sweep}.csv",
            caption="../report/sweep_table.rst",
            category="Sweeps",
            subcategory="{task}",
            labels={"content": "{sweep} (table)", "task": "{task}"},
        ),
        plot=report(
            "results/sweeps/{task}/{sweep}.png",
            caption="../report/sweep_plot.rst",
            category="Sweeps",
            subcategory="{task}",
            labels={"content": "{sweep}: dev score", "task": "{task}"},
        ),
        curves=report(
            "results/sweeps/{task}/{sweep}_curves.png",
            caption="../report/sweep_curves.rst",
            category="Sweeps",
            subcategory="{task}",
            labels={"content": "{sweep}: training curves", "task": "{task}"},
        ),
    log:
        "logs/sweep_summary/{task}/{sweep}.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("sweep_summary", "summary")
    resources:
        **rule_resources("sweep_summary", "summary"),
    params:
        student=lambda wc: sweep_student(wc.sweep),
        # each point's name and grid values, in grid order
        points=lambda wc: [
            {"name": v.name, "values": v.values} for v in sweep_runs(wc.task, wc.sweep)
        ],
    script:
        "../scripts/sweep_summary.py"


# Each ablation per task (kdprobe.report.ablations): every point's dev and test scores over its seeds, its difference
# from the reference point with a paired-bootstrap interval over the dev predictions, cost and parameters.
rule ablation_summary:
    input:
        labels="resources/data/{task}/labels.txt",
        dev="resources/data/{task}/dev.tsv",
        metrics=lambda wc: ablation_files(
            wc.task,
            wc.ablation,
            "results/students/{task}/{model}/{variant}/metrics.json",
        ),
        predictions=lambda wc: ablation_files(
            wc.task, wc.ablation, "results/predictions/{task}/{model}/{variant}.tsv"
        ),
        benchmarks=lambda wc: ablation_files(
            wc.task, wc.ablation, "logs/benchmarks/distil/{task}/{model}/{variant}.tsv"
        ),
    output:
        table=report(
            "results/ablations/{task}/{ablation}.csv",
            caption="../report/ablation_table.rst",
            category="Ablations",
            subcategory="{task}",
            labels={"content": "{ablation} (table)", "task": "{task}"},
        ),
        plot=report(
            "results/ablations/{task}/{ablation}.png",
            caption="../report/ablation_plot.rst",
            category="Ablations",
            subcategory="{task}",
            labels={"content": "{ablation}: dev score per point", "task": "{task}"},
        ),
    log:
        "logs/ablation_summary/{task}/{ablation}.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("ablation_summary", "summary")
    resources:
        **rule_resources("ablation_summary", "summary"),
    params:
        # each run's point label, axis labels and seed, in run order; the reference point; the resampling
        runs=lambda wc: ablation_run_params(wc.task, wc.ablation),
        reference=lambda wc: ablation_reference(wc.ablation),
        student=lambda wc: config["ablations"][wc.ablation]["student"],
        bootstrap=config["summary"]["ablation_bootstrap"],
    script:
        "../scripts/ablation_summary.py"


# With `probe: true`: each point's best-layer probing accuracy over its seeds, minus the reference point's.
rule ablation_probe_summary:
    input:
        probes=lambda wc: ablation_files(
            wc.task, wc.ablation, "results/probe/{task}/{model}/{variant}.csv"
        ),
    output:
        report(
            "results/ablations/{task}/{ablation}.probe.csv",
            caption="../report/ablation_probe.rst",
            category="Ablations",
            subcategory="{task}",
            labels={"content": "{ablation}: probing deltas", "task": "{task}"},
        ),
    log:
        "logs/ablation_probe_summary/{task}/{ablation}.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("ablation_probe_summary", "summary")
    resources:
        **rule_resources("ablation_probe_summary", "summary"),
    params:
        runs=lambda wc: ablation_run_params(wc.task, wc.ablation),
        reference=lambda wc: ablation_reference(wc.ablation),
    script:
        "../scripts/ablation_probe_summary.py"


# The results page of a finished run (kdprobe.report.results_page): results/results.md, with every file it reads
# an input, so editing one reruns it. Not part of `rule all`: ask for it by name, before --configfile (which takes
# every word after it), e.g. `snakemake --profile profiles/local --cores 2 results/results.md --configfile
# config/laptop.yaml config/laptop-offline.yaml`; docs/results.md is that page of the laptop run.
rule results_page:
    input:
        # one per task, in the order of params.tasks
        teacher_metrics=[f"{run_dir(task, 'teacher')}/metrics.json" for task in TASKS],
        teacher_curves=[f"{run_dir(task, 'teacher')}/curve.csv" for task in TASKS],
        train=expand("resources/data/{task}/train.tsv", task=TASKS),
        samples=expand("results/augment/{task}/shard0.parquet", task=TASKS),
        # one per task and student, task outer
        student_metrics=[
            f"{run_dir(task, student)}/metrics.json"
            for task in TASKS
            for student in STUDENTS
        ],
        student_curves=[
            f"{run_dir(task, student)}/curve.csv"
            for task in TASKS
            for student in STUDENTS
        ],
        # one per task and model (the teacher first), task outer
        predictions=[
            f"results/predictions/{task}/{model}.tsv"
            for task in TASKS
            for model in MODELS
        ],
        # the pre-trained teacher's, then one per task and model
        probes=["results/probe/pretrained/teacher.csv"]
        + [f"results/probe/{task}/{model}.csv" for task in TASKS for model in MODELS],
        # the baselines' tables, results/probe/{scope}/{model}.csv: random encoders and embed. baselines
        baseline_probes=(
            [f"results/probe/pretrained/{RANDOM_TEACHER}.csv"]
            if random_teacher(TASKS)
            else []
        )
        + [
            f"results/probe/{task}/{model}.csv"
            for task in TASKS
            for model in embed_models(task) + random_models(task)
        ],
        teacher_model=model_dir(TASKS[0], "teacher"),
        # every timed job of the study (as summary_cost), and the offline GPT-2's pre-training where it runs
        benchmarks=lambda wc: cost_benchmarks(wc)
        + (["logs/benchmarks/offline/gpt2.tsv"] if "offline" in config else []),
    output:
        "results/results.md",
    log:
        "logs/results_page.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("results_page", "summary")
    resources:
        **rule_resources("results_page", "summary"),
    params:
        tasks=TASKS,
        students=STUDENTS,
        probe_tasks=PROBE_TASKS,
        probe_data_dir=config["probe"]["data_dir"],
        teacher_model=kdconfig.section(config, TASKS[0], "teacher")["model"],
        data={
            task: {
                key: value
                for key, value in kdconfig.section(config, task, "data").items()
                if key in ("train", "dev", "test", "max_train")
            }
            for task in TASKS
        },
        augment={key: config["augment"][key] for key in ("sentences", "shards")},
        offline=(
            {
                "gpt2": {
                    key: config["offline"]["gpt2"][key]
                    for key in ("vocab_size", "hidden", "layers", "heads", "epochs")
                },
                "probing": {
                    key: config["offline"]["probing"][key]
                    for key in ("source", "sizes")
                },
            }
            if "offline" in config
            else None
        ),
        lstm_s_embeddings=config["students"].get("lstm_s", {}).get("embeddings"),
        # the run's --configfile arguments, relative to the workflow's directory, for the command the page prints
        configfiles=[os.path.relpath(path) for path in workflow.overwrite_configfiles],
    script:
        "../scripts/results_page.py"
