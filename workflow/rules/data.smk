# Raw task data -> normalised resources/data/{task}/{train,dev,test}.tsv and labels.txt.


rule prepare_data:
    input:
        unpack(raw_inputs),
    output:
        **data_files("{task}"),
    log:
        "logs/prepare_data/{task}.log",
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("prepare_data")
    resources:
        **rule_resources("prepare_data"),
    params:
        source=lambda wc: kdconfig.section(config, wc.task, "data"),
    script:
        "../scripts/prepare_data.py"
