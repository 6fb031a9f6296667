# Stage distil: distil each student from the teacher's logits on the transfer set; the best-dev checkpoint is
# kept. Rule embed_model: the student built as distil builds it but not trained, its token table written for the
# thesis's embed. baseline (probed by rule probe as {student}_embed). Library: kdprobe.distil (the students:
# kdprobe.students).


rule distil:
    input:
        unpack(student_inputs),
    output:
        model=directory("results/students/{task}/{student}/model"),
        metrics="results/students/{task}/{student}/metrics.json",
        curve="results/students/{task}/{student}/curve.csv",
    log:
        "logs/distil/{task}/{student}.log",
    benchmark:
        "logs/benchmarks/distil/{task}/{student}.tsv"
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("distil")
    resources:
        **rule_resources("distil"),
    params:
        settings=lambda wc: kdconfig.student_settings(config, wc.task, wc.student),
        state="results/.state/students/{task}/{student}.pt",
    script:
        "../scripts/distil.py"


rule embed_model:
    input:
        unpack(student_inputs),
    output:
        directory("results/embed/{task}/{student}"),
    log:
        "logs/embed_model/{task}/{student}.log",
    benchmark:
        "logs/benchmarks/embed_model/{task}/{student}.tsv"
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("embed_model")
    resources:
        **rule_resources("embed_model"),
    params:
        # the settings the untrained table depends on (not lr, epochs, ...: kdconfig.TRAINING_ONLY)
        settings=lambda wc: kdconfig.embed_table_settings(config, wc.task, wc.student),
    script:
        "../scripts/embed_model.py"
