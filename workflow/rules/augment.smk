# Fine-tune GPT-2 on each training set, then sample the augmentation sentences in shards (one job, one seed each).


def gpt2_inputs(wildcards):
    settings = kdconfig.section(config, wildcards.task, "gpt2")
    return {"train": f"resources/data/{wildcards.task}/train.tsv"} | model_inputs(settings["model"])


rule gpt2:
    input:
        unpack(gpt2_inputs),
    output:
        model=directory("results/gpt2/{task}/model"),
        curve="results/gpt2/{task}/curve.csv",
    params:
        settings=lambda wc: kdconfig.section(config, wc.task, "gpt2"),
        state="results/.state/gpt2/{task}.pt",
    log:
        "logs/gpt2/{task}.log",
    benchmark:
        "benchmarks/gpt2/{task}.tsv"
    threads: rule_threads("gpt2")
    resources:
        **rule_resources("gpt2"),
    script:
        "../scripts/gpt2.py"


def shard_settings(wildcards):
    """What one shard's sentences depend on: its size and seed, and the sampling settings."""
    aug = kdconfig.section(config, wildcards.task, "augment")
    shard = int(wildcards.shard)
    if shard >= aug["shards"]:
        raise WorkflowError(f"shard {shard} requested but augment.shards is {aug['shards']}")
    keep = ("max_length", "batch_size", "temperature", "top_k", "chunk_size")
    return {k: aug[k] for k in keep} | {
        "sentences": kdconfig.shard_sizes(aug["sentences"], aug["shards"])[shard],
        "seed": aug["seed"] + shard,
    }


rule sample:
    input:
        model="results/gpt2/{task}/model",
    output:
        "results/augment/{task}/shard{shard}.parquet",
    params:
        settings=shard_settings,
        chunk_dir="results/.state/augment/{task}/shard{shard}",
    log:
        "logs/sample/{task}/shard{shard}.log",
    benchmark:
        "benchmarks/sample/{task}/shard{shard}.tsv"
    threads: rule_threads("sample")
    resources:
        **rule_resources("sample"),
    script:
        "../scripts/sample.py"
