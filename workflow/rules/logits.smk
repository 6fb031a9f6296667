# Teacher logits for every transfer sentence: the training set and each augmentation shard.


def logits_source(wildcards):
    if wildcards.part == "train":
        return f"resources/data/{wildcards.task}/train.tsv"
    return f"results/augment/{wildcards.task}/{wildcards.part}.parquet"


rule logits:
    input:
        teacher="results/teacher/{task}/model",
        sentences=logits_source,
    output:
        "results/transfer/{task}/{part}.parquet",
    params:
        settings=lambda wc: kdconfig.section(config, wc.task, "logits"),
    log:
        "logs/logits/{task}/{part}.log",
    benchmark:
        "benchmarks/logits/{task}/{part}.tsv"
    threads: rule_threads("logits")
    resources:
        **rule_resources("logits"),
    script:
        "../scripts/logits.py"
