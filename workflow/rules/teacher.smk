# Fine-tune the teacher (BERT) on each task; the dev metric is logged during training for the convergence plot.


def teacher_inputs(wildcards):
    settings = kdconfig.section(config, wildcards.task, "teacher")
    return data_files(wildcards.task) | model_inputs(settings["model"])


rule teacher:
    input:
        unpack(teacher_inputs),
    output:
        model=directory("results/teacher/{task}/model"),
        curve="results/teacher/{task}/curve.csv",
        metrics="results/teacher/{task}/metrics.json",
    params:
        settings=lambda wc: kdconfig.section(config, wc.task, "teacher"),
        state="results/.state/teacher/{task}.pt",
    log:
        "logs/teacher/{task}.log",
    benchmark:
        "benchmarks/teacher/{task}.tsv"
    threads: rule_threads("teacher")
    resources:
        **rule_resources("teacher"),
    script:
        "../scripts/teacher.py"
