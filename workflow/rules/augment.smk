# Fine-tune GPT-2 on each training set, then sample the augmentation sentences in shards (one job, one seed each);
# rule generate: the rule-based (d-lite) and random-word transfer sets, sharded the same way, only for the kinds
# some run uses (students.<student>.transfer).


rule gpt2:
    input:
        unpack(gpt2_inputs),
    output:
        model=directory("results/gpt2/{task}/model"),
        curve="results/gpt2/{task}/curve.csv",
    log:
        "logs/gpt2/{task}.log",
    benchmark:
        "logs/benchmarks/gpt2/{task}.tsv"
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("gpt2")
    resources:
        **rule_resources("gpt2"),
    params:
        settings=lambda wc: kdconfig.section(config, wc.task, "gpt2"),
        state="results/.state/gpt2/{task}.pt",
    script:
        "../scripts/gpt2.py"


rule sample:
    input:
        model="results/gpt2/{task}/model",
    output:
        "results/augment/{task}/shard{shard}.parquet",
    log:
        "logs/sample/{task}/shard{shard}.log",
    benchmark:
        "logs/benchmarks/sample/{task}/shard{shard}.tsv"
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("sample")
    resources:
        **rule_resources("sample"),
    params:
        settings=shard_settings,
        chunk_dir="results/.state/augment/{task}/shard{shard}",
    script:
        "../scripts/sample.py"


rule generate:
    input:
        train="resources/data/{task}/train.tsv",
    output:
        "results/augment/{task}/{kind}/shard{shard}.parquet",
    log:
        "logs/generate/{task}/{kind}/shard{shard}.log",
    benchmark:
        "logs/benchmarks/generate/{task}/{kind}/shard{shard}.tsv"
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("generate")
    resources:
        **rule_resources("generate"),
    params:
        settings=generated_shard_settings,
        chunk_dir="results/.state/augment/{task}/{kind}/shard{shard}",
    script:
        "../scripts/generate.py"
