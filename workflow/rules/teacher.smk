# Fine-tune the teacher (BERT) on each task; the dev metric is logged during training for the convergence plot.


rule teacher:
    input:
        unpack(teacher_inputs),
    output:
        model=directory("results/teacher/{task}/model"),
        curve="results/teacher/{task}/curve.csv",
        metrics="results/teacher/{task}/metrics.json",
    log:
        "logs/teacher/{task}.log",
    benchmark:
        "logs/benchmarks/teacher/{task}.tsv"
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("teacher")
    resources:
        **rule_resources("teacher"),
    params:
        settings=lambda wc: kdconfig.section(config, wc.task, "teacher"),
        state="results/.state/teacher/{task}.pt",
    script:
        "../scripts/teacher.py"
