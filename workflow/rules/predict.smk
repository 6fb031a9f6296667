# Stage predict: run each trained model on a split. Dev and test predictions (gold, predicted, confidence, every
# class probability) of the teacher and both students, and each model's size and measured speed (rule speed; the
# summary tables read it). Library: kdprobe.predict (predictions, speed).


rule predict:
    input:
        **data_files("{task}"),
        model=lambda wc: model_dir(wc.task, wc.model),
    output:
        "results/predictions/{task}/{model}.tsv",
    log:
        "logs/predict/{task}/{model}.log",
    benchmark:
        "logs/benchmarks/predict/{task}/{model}.tsv"
    # a job of seconds: with predict_test, speed and the seeds' predictions (rules made from this one) of the same
    # model, a few go as one cluster job (profiles/slurm/config.yaml group-components)
    group:
        "predict_{task}_{model}"
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


use rule predict as predict_test with:
    output:
        "results/predictions/{task}/{model}.test.tsv",
    log:
        "logs/predict_test/{task}/{model}.log",
    benchmark:
        "logs/benchmarks/predict_test/{task}/{model}.tsv"
    threads: rule_threads("predict_test")
    resources:
        **rule_resources("predict_test"),
    params:
        split="test",  # merged with predict's params (max_length)


rule speed:
    input:
        dev="resources/data/{task}/dev.tsv",
        labels="resources/data/{task}/labels.txt",
        model=lambda wc: model_dir(wc.task, wc.model),
    output:
        "results/summary/speed/{task}/{model}.json",
    log:
        "logs/speed/{task}/{model}.log",
    benchmark:
        "logs/benchmarks/speed/{task}/{model}.tsv"
    group:
        "predict_{task}_{model}"
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("speed")
    resources:
        **rule_resources("speed"),
    params:
        max_length=lambda wc: kdconfig.model_max_length(config, wc.task, wc.model),
        # the timing settings only (kdprobe.predict.speed.SETTINGS), not summary.reproduction
        settings={
            key: config["summary"][key]
            for key in (
                "latency_repeats",
                "throughput_batch",
                "throughput_batches",
                "warmup",
            )
        },
        # what the measurement runs on: the CPU threads and GPUs asked for, and the device setting
        threads=rule_threads("speed"),
        gpus=rule_gpus("speed"),
        device=config.get("device", "auto"),
    script:
        "../scripts/speed.py"
