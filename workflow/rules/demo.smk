# The demo's own inputs, generated deterministically: raw task data in the real formats, SentEval-format
# probing files and their corpus (rule demo_data), then a tiny BERT and GPT-2 with tokenizers trained on that
# corpus and a word2vec binary, each its own rule so they train side by side.
if "demo" in config:

    DEMO = "resources/demo"
    DEMO_MODELS = {
        "bert": directory(f"{DEMO}/models/bert"),
        "gpt2": directory(f"{DEMO}/models/gpt2"),
        "word2vec": f"{DEMO}/word2vec.bin",
    }

    rule demo_data:
        output:
            cola_train=f"{DEMO}/raw/cola/train.tsv",
            cola_dev=f"{DEMO}/raw/cola/dev.tsv",
            sst2_train=f"{DEMO}/raw/sst2/train.tsv",
            sst2_dev=f"{DEMO}/raw/sst2/dev.tsv",
            sara=f"{DEMO}/raw/sara/nlu.md",
            corpus=f"{DEMO}/corpus.txt",
            probing=expand(f"{DEMO}/probing/{{name}}.txt", name=PROBE_TASKS),
        log:
            "logs/demo_data.log",
        conda:
            "../../envs/kdprobe.yaml"
        threads: rule_threads("demo_data", "demo")
        resources:
            **rule_resources("demo_data", "demo"),
        params:
            settings={
                k: config["demo"].get(k)
                for k in ("seed", "sentences", "probing_sentences")
            },
        script:
            "../scripts/demo_data.py"

    # rules demo_bert, demo_gpt2, demo_word2vec (one per entry of DEMO_MODELS)
    for _kind, _output in DEMO_MODELS.items():

        rule:
            name:
                f"demo_{_kind}"
            input:
                corpus=f"{DEMO}/corpus.txt",
            output:
                _output,
            log:
                f"logs/demo_{_kind}.log",
            conda:
                "../../envs/kdprobe.yaml"
            threads: rule_threads(f"demo_{_kind}", "demo")
            resources:
                **rule_resources(f"demo_{_kind}", "demo"),
            params:
                kind=_kind,
                settings={
                    "seed": config["demo"].get("seed"),
                    _kind: config["demo"].get(_kind),
                },
            script:
                "../scripts/demo_model.py"
