# The study's answer per task (teacher and students side by side: scores on dev and test, shares of the teacher's,
# size, measured speed), study-wide, and what the study cost (from the jobs' benchmark files): results/summary/.
# Library: kdprobe.summary, kdprobe.speed.


use rule predict as predict_test with:
    output:
        "results/predictions/{task}/{model}.test.tsv",
    log:
        "logs/predict_test/{task}/{model}.log",
    benchmark:
        "benchmarks/predict_test/{task}/{model}.tsv"
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
        "benchmarks/speed/{task}/{model}.tsv"
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("speed")
    resources:
        **rule_resources("speed"),
    params:
        max_length=lambda wc: kdconfig.model_max_length(config, wc.task, wc.model),
        settings=config["summary"],
        # what the measurement runs on: the CPU threads and GPUs asked for, and the device setting
        threads=rule_threads("speed"),
        gpus=rule_resources("speed")["gpu"],
        device=config.get("device", "auto"),
    script:
        "../scripts/speed.py"


rule summary_task:
    input:
        labels="resources/data/{task}/labels.txt",
        dev="resources/data/{task}/dev.tsv",
        test="resources/data/{task}/test.tsv",
        predictions_dev=expand("results/predictions/{{task}}/{model}.tsv", model=MODELS),
        predictions_test=expand(
            "results/predictions/{{task}}/{model}.test.tsv", model=MODELS
        ),
        speed=expand("results/summary/speed/{{task}}/{model}.json", model=MODELS),
        # every extra seed's predictions, dev then test, in the order of params.seeds
        seed_predictions=lambda wc: [
            f"results/predictions/{wc.task}/{model}/{variant}{suffix}"
            for model in MODELS
            for variant in extra_seeds(wc.task, model)
            for suffix in (".tsv", ".test.tsv")
        ],
    output:
        table=report(
            "results/summary/{task}.csv",
            caption="../report/summary_task.rst",
            category="Summary",
            subcategory="{task}",
            labels={"content": "teacher and students (table)", "task": "{task}"},
        ),
        seeds=report(
            "results/summary/seeds/{task}.csv",
            caption="../report/summary_seeds.rst",
            category="Summary",
            subcategory="{task}",
            labels={"content": "every seed (table)", "task": "{task}"},
        ),
    log:
        "logs/summary_task/{task}.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("summary")
    resources:
        **rule_resources("summary"),
    params:
        models=MODELS,
        # {model: [[seed, variant name or None for its own run], ...]}
        seeds=lambda wc: {model: seed_runs(wc.task, model) for model in MODELS},
    script:
        "../scripts/summary_task.py"


rule summary_study:
    input:
        expand("results/summary/{task}.csv", task=TASKS),
    output:
        table=report(
            "results/summary/study.csv",
            caption="../report/summary_study.rst",
            category="Summary",
            subcategory="study",
            labels={"content": "all tasks (table)", "task": "all"},
        ),
        plot=report(
            "results/summary/study.png",
            caption="../report/summary_study_plot.rst",
            category="Summary",
            subcategory="study",
            labels={"content": "score against size and latency", "task": "all"},
        ),
    log:
        "logs/summary_study.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("summary")
    resources:
        **rule_resources("summary"),
    script:
        "../scripts/summary_study.py"


rule summary_cost:
    input:
        cost_benchmarks,
    output:
        table=report(
            "results/summary/cost.csv",
            caption="../report/summary_cost.rst",
            category="Summary",
            subcategory="cost",
            labels={"content": "cost per stage and task (table)", "task": "all"},
        ),
        plot=report(
            "results/summary/cost.png",
            caption="../report/summary_cost_plot.rst",
            category="Summary",
            subcategory="cost",
            labels={"content": "cost per stage", "task": "all"},
        ),
    log:
        "logs/summary_cost.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("summary")
    resources:
        **rule_resources("summary"),
    params:
        gpus={rule: rule_resources(key)["gpu"] for rule, key in COST_RESOURCES.items()},
    script:
        "../scripts/summary_cost.py"
