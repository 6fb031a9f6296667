# Stage distil: distil each student from the teacher's logits on the transfer set; the best-dev checkpoint is
# kept. Rule embed_model: the student built as distil builds it but not trained, its token table written for the
# thesis's embed. baseline (probed by rule probe as {student}_embed). Rules random_student and random_teacher: the
# random-encoder baselines (Zhang and Bowman 2018; probe.random_baseline), each architecture with every weight
# random and the same tokenizer, vocabulary and embedding setup, probed like the models as {student}_random and
# pretrained/teacher_random. Library: kdprobe.distil (the students: kdprobe.students; the random weights:
# kdprobe.random_models).


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
        "../scripts/untrained_student.py"


rule random_student:
    input:
        unpack(student_inputs),
    output:
        directory("results/random/{task}/{student}"),
    log:
        "logs/random_student/{task}/{student}.log",
    benchmark:
        "logs/benchmarks/random_student/{task}/{student}.tsv"
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("random_student")
    resources:
        **rule_resources("random_student"),
    params:
        # what the student's shapes and vocabulary depend on (as embed_model), its seed included: the random weights
        settings=lambda wc: kdconfig.embed_table_settings(config, wc.task, wc.student),
    script:
        "../scripts/untrained_student.py"


rule random_teacher:
    input:
        unpack(lambda wc: model_inputs(config["teacher"]["model"])),
    output:
        directory("results/random/teacher"),
    log:
        "logs/random_teacher.log",
    benchmark:
        "logs/benchmarks/random_teacher/pretrained.tsv"
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("random_teacher")
    resources:
        **rule_resources("random_teacher"),
    params:
        # the pre-trained teacher (its config.json and tokenizer, never its weights) and the seed of the weights
        model=config["teacher"]["model"],
        seed=config["teacher"]["seed"],
    script:
        "../scripts/random_teacher.py"
