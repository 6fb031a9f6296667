# Raw task data -> normalised resources/data/{task}/{train,dev,test}.tsv and labels.txt.


def raw_inputs(wildcards):
    source = kdconfig.section(config, wildcards.task, "data")
    return {key: source[key] for key in ("train", "dev", "test") if key in source}


rule prepare_data:
    input:
        unpack(raw_inputs),
    output:
        **data_files("{task}"),
    params:
        source=lambda wc: kdconfig.section(config, wc.task, "data"),
    log:
        "logs/prepare_data/{task}.log",
    threads: rule_threads("prepare_data")
    resources:
        **rule_resources("prepare_data"),
    script:
        "../scripts/prepare_data.py"
