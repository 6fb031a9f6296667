# Extra seeds and sweep points (config `seeds`, `sweeps`; kdprobe.variants): each run one job below its model's
# own directory under a readable {variant} name, seed<N> or sweeps/<sweep>/<label>; its own log and benchmark.
# Extra seeds are scored on dev and test (and probed with `seeds.probe`); each sweep is summarised per task by
# rule sweep_summary (summary.smk).


use rule teacher as teacher_variant with:
    output:
        model=directory("results/teacher/{task}/{variant}/model"),
        curve="results/teacher/{task}/{variant}/curve.csv",
        metrics="results/teacher/{task}/{variant}/metrics.json",
    log:
        "logs/teacher/{task}/{variant}.log",
    benchmark:
        "logs/benchmarks/teacher/{task}/{variant}.tsv"
    threads: rule_threads("teacher_variant")
    resources:
        **rule_resources("teacher_variant"),
    params:
        settings=lambda wc: variant_settings(wc.task, "teacher", wc.variant),
        state="results/.state/teacher/{task}/{variant}.pt",


use rule distil as distil_variant with:
    output:
        model=directory("results/students/{task}/{student}/{variant}/model"),
        metrics="results/students/{task}/{student}/{variant}/metrics.json",
        curve="results/students/{task}/{student}/{variant}/curve.csv",
    log:
        "logs/distil/{task}/{student}/{variant}.log",
    benchmark:
        "logs/benchmarks/distil/{task}/{student}/{variant}.tsv"
    threads: rule_threads("distil_variant")
    resources:
        **rule_resources("distil_variant"),
    params:
        settings=lambda wc: variant_settings(wc.task, wc.student, wc.variant),
        state="results/.state/students/{task}/{student}/{variant}.pt",


use rule predict as predict_variant with:
    input:
        **data_files("{task}"),
        model=lambda wc: model_dir(wc.task, wc.model, wc.variant),
    output:
        "results/predictions/{task}/{model}/{variant}.tsv",
    log:
        "logs/predict/{task}/{model}/{variant}.log",
    benchmark:
        "logs/benchmarks/predict/{task}/{model}/{variant}.tsv"
    threads: rule_threads("predict_variant")
    resources:
        **rule_resources("predict_variant"),
    params:
        max_length=lambda wc: variant_settings(wc.task, wc.model, wc.variant)[
            "max_length"
        ],


use rule predict_variant as predict_test_variant with:
    output:
        "results/predictions/{task}/{model}/{variant}.test.tsv",
    log:
        "logs/predict_test/{task}/{model}/{variant}.log",
    benchmark:
        "logs/benchmarks/predict_test/{task}/{model}/{variant}.tsv"
    threads: rule_threads("predict_test_variant")
    resources:
        **rule_resources("predict_test_variant"),
    params:
        max_length=lambda wc: variant_settings(wc.task, wc.model, wc.variant)[
            "max_length"
        ],
        split="test",


use rule probe as probe_variant with:
    input:
        model=lambda wc: model_dir(wc.scope, wc.model, wc.variant),
        data=probe_data(),
    output:
        tables=expand(
            "results/probe/{{scope}}/{{model}}/{{variant}}/{probe_task}.csv",
            probe_task=PROBE_TASKS,
        ),
        merged="results/probe/{scope}/{model}/{variant}.csv",
    log:
        "logs/probe/{scope}/{model}/{variant}.log",
    benchmark:
        "logs/benchmarks/probe/{scope}/{model}/{variant}.tsv"
    threads: rule_threads("probe_variant")
    resources:
        **rule_resources("probe_variant"),
    params:
        model_path=lambda wc: model_dir(wc.scope, wc.model, wc.variant),
        state="results/.state/probe/{scope}/{model}/{variant}",
