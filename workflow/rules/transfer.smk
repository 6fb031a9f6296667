# Stage transfer: the transfer set, teacher logits for every transfer sentence (the training set and each
# augmentation shard). Library: kdprobe.transfer.


rule logits:
    input:
        teacher="results/teacher/{task}/model",
        sentences=logits_source,
    output:
        "results/transfer/{task}/{part}.parquet",
    log:
        "logs/logits/{task}/{part}.log",
    benchmark:
        "logs/benchmarks/logits/{task}/{part}.tsv"
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("logits")
    resources:
        **rule_resources("logits"),
    params:
        settings=lambda wc: kdconfig.section(config, wc.task, "logits"),
        chunk_dir="results/.state/logits/{task}/{part}",
    script:
        "../scripts/logits.py"
