# Dev-set predictions (gold, predicted, confidence, all probabilities) of the teacher and both students.


rule predict:
    input:
        **data_files("{task}"),
        model=lambda wc: model_dir(wc.task, wc.model),
    output:
        "results/predictions/{task}/{model}.tsv",
    log:
        "logs/predict/{task}/{model}.log",
    benchmark:
        "benchmarks/predict/{task}/{model}.tsv"
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("predict")
    resources:
        **rule_resources("predict"),
    params:
        # the token limit the model was trained with: predictions truncate there too
        max_length=lambda wc: kdconfig.model_max_length(config, wc.task, wc.model),
    script:
        "../scripts/predict.py"
