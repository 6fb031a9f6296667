# Extra seeds and sweep points (config `seeds`, `sweeps`; kdprobe.variants): each run one job below its model's
# own directory under a readable {variant} name, seed<N> or sweeps/<sweep>/<label>; its own log and benchmark.
# Extra seeds are scored on dev and test (and probed with `seeds.probe`); each sweep is summarised per task.


use rule teacher as teacher_variant with:
    output:
        model=directory("results/teacher/{task}/{variant}/model"),
        curve="results/teacher/{task}/{variant}/curve.csv",
        metrics="results/teacher/{task}/{variant}/metrics.json",
    log:
        "logs/teacher/{task}/{variant}.log",
    benchmark:
        "benchmarks/teacher/{task}/{variant}.tsv"
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
        "benchmarks/distil/{task}/{student}/{variant}.tsv"
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
        "benchmarks/predict/{task}/{model}/{variant}.tsv"
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
        "benchmarks/predict_test/{task}/{model}/{variant}.tsv"
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
        "benchmarks/probe/{scope}/{model}/{variant}.tsv"
    params:
        model_path=lambda wc: model_dir(wc.scope, wc.model, wc.variant),
        state="results/.state/probe/{scope}/{model}/{variant}",


rule sweep_summary:
    input:
        base=lambda wc: f"{run_dir(wc.task, sweep_student(wc.sweep))}/metrics.json",
        metrics=lambda wc: [
            f"{run_dir(wc.task, v.model, v.name)}/metrics.json"
            for v in sweep_runs(wc.task, wc.sweep)
        ],
        curves=lambda wc: [
            f"{run_dir(wc.task, v.model, v.name)}/curve.csv"
            for v in sweep_runs(wc.task, wc.sweep)
        ],
    output:
        table=report(
            "results/sweeps/{task}/{sweep}.csv",
            caption="../report/sweep_table.rst",
            category="Sweeps",
            subcategory="{task}",
            labels={"content": "{sweep} (table)", "task": "{task}"},
        ),
        plot=report(
            "results/sweeps/{task}/{sweep}.png",
            caption="../report/sweep_plot.rst",
            category="Sweeps",
            subcategory="{task}",
            labels={"content": "{sweep}: dev score", "task": "{task}"},
        ),
        curves=report(
            "results/sweeps/{task}/{sweep}_curves.png",
            caption="../report/sweep_curves.rst",
            category="Sweeps",
            subcategory="{task}",
            labels={"content": "{sweep}: training curves", "task": "{task}"},
        ),
    log:
        "logs/sweep_summary/{task}/{sweep}.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("plots")
    resources:
        **rule_resources("plots"),
    params:
        student=lambda wc: sweep_student(wc.sweep),
        # each point's name and grid values, in grid order
        points=lambda wc: [
            {"name": v.name, "values": v.values} for v in sweep_runs(wc.task, wc.sweep)
        ],
    script:
        "../scripts/sweep_summary.py"
