# Layer-wise probing with the SentEval tasks: one job per (model, probing task), all layers in one pass.
# {scope} is a task, or `pretrained` for the pre-trained (not fine-tuned) teacher, probed once.


def probe_kind(wildcards):
    return "pretrained" if wildcards.scope == "pretrained" else wildcards.model


def probe_model_path(wildcards):
    if wildcards.scope == "pretrained":
        if wildcards.model != "teacher":
            raise WorkflowError("only the teacher has a pre-trained probe: results/probe/pretrained/teacher.csv")
        return config["teacher"]["model"]
    return model_dir(wildcards.scope, wildcards.model)


def probe_inputs(wildcards):
    path = probe_model_path(wildcards)
    model = {"model": path} if wildcards.scope != "pretrained" else model_inputs(path)
    return model | {"data": f"{config['probe']['data_dir']}/{wildcards.probe_task}.txt"}


rule probe:
    input:
        unpack(probe_inputs),
    output:
        "results/probe/{scope}/{model}/{probe_task}.csv",
    params:
        kind=probe_kind,
        model_path=probe_model_path,
        settings=lambda wc: kdconfig.probe_settings(config, probe_kind(wc)),
    log:
        "logs/probe/{scope}/{model}/{probe_task}.log",
    benchmark:
        "benchmarks/probe/{scope}/{model}/{probe_task}.tsv"
    threads: rule_threads("probe")
    resources:
        **rule_resources("probe"),
    script:
        "../scripts/probe.py"


rule merge_probes:
    localrule: True
    input:
        expand("results/probe/{{scope}}/{{model}}/{probe_task}.csv", probe_task=PROBE_TASKS),
    output:
        "results/probe/{scope}/{model}.csv",
    params:
        probe_tasks=PROBE_TASKS,
    log:
        "logs/merge_probes/{scope}/{model}.log",
    threads: rule_threads("merge")
    resources:
        **rule_resources("merge"),
    script:
        "../scripts/merge_probes.py"
