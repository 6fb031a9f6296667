# What a finished run found, as tables and plots (library: kdprobe.analysis, kdprobe.plots):
# results/analysis/{task}/: the prediction analysis of the teacher and the students on the dev set;
# results/plots/probe/: probing accuracy by relative layer depth, per task and as an overview;
# results/plots/curves/{task}/: training curves of the teacher, GPT-2 and the students.
# Cheap jobs (seconds): local rules, run where Snakemake runs.


rule analyse_predictions:
    input:
        **{model: f"results/predictions/{{task}}/{model}.tsv" for model in MODELS},
    output:
        summary="results/analysis/{task}/summary.md",
        models=analysis_report(
            "results/analysis/{task}/models.csv",
            "analysis_models",
            "scores and calibration",
        ),
        mistakes=analysis_report(
            "results/analysis/{task}/mistakes.csv",
            "analysis_mistakes",
            "most and least confident mistakes",
        ),
        wrong="results/analysis/{task}/wrong.csv",
        mistake_sets=analysis_report(
            "results/analysis/{task}/mistake_sets.csv",
            "analysis_mistake_sets",
            "unique and shared mistakes",
        ),
        agreement=analysis_report(
            "results/analysis/{task}/agreement.csv",
            "analysis_agreement",
            "agreement table",
        ),
        calibration="results/analysis/{task}/calibration.csv",
        confidence_plot=analysis_report(
            "results/analysis/{task}/confidence.png",
            "analysis_confidence",
            "confidence histograms",
        ),
        reliability_plot=analysis_report(
            "results/analysis/{task}/reliability.png",
            "analysis_reliability",
            "reliability diagrams",
        ),
        agreement_plot=analysis_report(
            "results/analysis/{task}/agreement.png",
            "analysis_agreement_plot",
            "agreement matrices",
        ),
    log:
        "logs/analyse_predictions/{task}.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("plots")
    resources:
        **rule_resources("plots"),
    params:
        models=MODELS,
        settings=config["analysis"],
    script:
        "../scripts/analyse_predictions.py"


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
    threads: rule_threads("plots")
    resources:
        **rule_resources("plots"),
    params:
        entries=lambda wc: probing_plot_entries([wc.task]),
    script:
        "../scripts/plot_probing.py"


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
    threads: rule_threads("plots")
    resources:
        **rule_resources("plots"),
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
    threads: rule_threads("plots")
    resources:
        **rule_resources("plots"),
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
    threads: rule_threads("plots")
    resources:
        **rule_resources("plots"),
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
    threads: rule_threads("plots")
    resources:
        **rule_resources("plots"),
    params:
        stage="students",
        # what names each student's loss on its axis
        losses=lambda wc: student_losses(wc.task),
        seeds=lambda wc: {
            student: extra_seeds(wc.task, student) for student in STUDENTS
        },
    script:
        "../scripts/plot_curves.py"
