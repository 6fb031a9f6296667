# Distil each student from the teacher's logits on the transfer set; the best-dev checkpoint is kept.


def student_inputs(wildcards):
    settings = kdconfig.student_settings(config, wildcards.task, wildcards.student)
    inputs = data_files(wildcards.task) | {
        "transfer": transfer_parts(wildcards.task),
        "teacher": f"results/teacher/{wildcards.task}/model",
    }
    if settings.get("embeddings") == "word2vec":
        inputs["word2vec"] = settings["word2vec"]
    return inputs


rule distil:
    input:
        unpack(student_inputs),
    output:
        model=directory("results/students/{task}/{student}/model"),
        metrics="results/students/{task}/{student}/metrics.json",
        curve="results/students/{task}/{student}/curve.csv",
    params:
        settings=lambda wc: kdconfig.student_settings(config, wc.task, wc.student),
        state="results/.state/students/{task}/{student}.pt",
    log:
        "logs/distil/{task}/{student}.log",
    benchmark:
        "benchmarks/distil/{task}/{student}.tsv"
    threads: rule_threads("student")
    resources:
        **rule_resources("student"),
    script:
        "../scripts/distil.py"
