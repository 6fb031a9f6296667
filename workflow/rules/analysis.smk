# Dev-set predictions (gold, predicted, confidence, all probabilities) of the teacher and both students.


rule predict:
    input:
        **data_files("{task}"),
        model=lambda wc: model_dir(wc.task, wc.model),
    output:
        "results/predictions/{task}/{model}.tsv",
    log:
        "logs/predict/{task}/{model}.log",
    threads: rule_threads("predict")
    resources:
        **rule_resources("predict"),
    script:
        "../scripts/predict.py"
