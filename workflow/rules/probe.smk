# Layer-wise probing with the SentEval tasks: one job per (model, probing task), all layers in one pass.
# {scope} is a task, or `pretrained` for the pre-trained (not fine-tuned) teacher, probed once.


rule probe:
    input:
        unpack(probe_inputs),
    output:
        "results/probe/{scope}/{model}/{probe_task}.csv",
    log:
        "logs/probe/{scope}/{model}/{probe_task}.log",
    benchmark:
        "benchmarks/probe/{scope}/{model}/{probe_task}.tsv"
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("probe")
    resources:
        **rule_resources("probe"),
    params:
        kind=probe_kind,
        model_path=probe_model_path,
        settings=lambda wc: kdconfig.probe_settings(
            config, probe_kind(wc), wc.probe_task
        ),
    script:
        "../scripts/probe.py"


rule merge_probes:
    input:
        expand(
            "results/probe/{{scope}}/{{model}}/{probe_task}.csv",
            probe_task=PROBE_TASKS,
        ),
    output:
        "results/probe/{scope}/{model}.csv",
    log:
        "logs/merge_probes/{scope}/{model}.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("merge")
    resources:
        **rule_resources("merge"),
    params:
        probe_tasks=PROBE_TASKS,
    script:
        "../scripts/merge_probes.py"
