# Stage distil: distil each student from the teacher's logits on the transfer set; the best-dev checkpoint is
# kept. Library: kdprobe.distil (the students: kdprobe.students).


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
