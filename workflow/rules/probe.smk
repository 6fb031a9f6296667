# Layer-wise probing with the SentEval tasks: one job per model, the model loaded once, every probing task in
# turn (all requested layers encoded in one pass per task). {scope} is a task, or `pretrained` for the pre-trained
# (not fine-tuned) teacher, probed once. Each task's table is kept keyed by its own settings, inputs and code
# (kdprobe.probe.run.probe_tasks), so an edit that concerns some probing tasks recomputes only those; a forced
# rerun (-f, -F, -R) or one after the outputs were deleted recomputes them all. {model} is the teacher, a student,
# or a student's embed. baseline `{student}_embed` (probe.embed_baseline): its token-embedding table before
# training, built by rule embed_model (distil.smk) from the student's inputs and settings, without training; or a
# random-encoder baseline (probe.random_baseline): `{student}_random` per task and `teacher_random` in scope
# pretrained, the architecture with random weights (rules random_student, random_teacher), probed as its kind.


rule probe:
    input:
        unpack(probe_inputs),
    output:
        tables=expand(
            "results/probe/{{scope}}/{{model}}/{probe_task}.csv",
            probe_task=PROBE_TASKS,
        ),
        merged="results/probe/{scope}/{model}.csv",
    log:
        "logs/probe/{scope}/{model}.log",
    benchmark:
        "logs/benchmarks/probe/{scope}/{model}.tsv"
    wildcard_constraints:
        model=exactly(MODELS + EMBED_MODELS + RANDOM_MODELS + [RANDOM_TEACHER]),
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("probe")
    resources:
        **rule_resources("probe"),
    params:
        kind=probe_kind,
        name=lambda wc: wc.model,
        model_path=probe_model_path,
        # {probing task: the settings its table depends on} (kdprobe.config.probe_settings)
        settings=lambda wc: {
            name: kdconfig.probe_settings(config, probe_kind(wc), name)
            for name in PROBE_TASKS
        },
        state="results/.state/probe/{scope}/{model}",
    script:
        "../scripts/probe.py"
