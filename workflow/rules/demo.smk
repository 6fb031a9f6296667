# The demo's own inputs, generated deterministically: raw task data in the real formats, SentEval-format
# probing files, a tiny pre-trained BERT and GPT-2 with tokenizers trained here, and a word2vec binary.
if "demo" in config:

    DEMO = "resources/demo"

    rule demo_assets:
        output:
            cola_train=f"{DEMO}/raw/cola/train.tsv",
            cola_dev=f"{DEMO}/raw/cola/dev.tsv",
            sst2_train=f"{DEMO}/raw/sst2/train.tsv",
            sst2_dev=f"{DEMO}/raw/sst2/dev.tsv",
            sara=f"{DEMO}/raw/sara/nlu.md",
            corpus=f"{DEMO}/corpus.txt",
            probing=expand(f"{DEMO}/probing/{{name}}.txt", name=PROBE_TASKS),
            bert=directory(f"{DEMO}/models/bert"),
            gpt2=directory(f"{DEMO}/models/gpt2"),
            word2vec=f"{DEMO}/word2vec.bin",
        log:
            "logs/demo_assets.log",
        threads: rule_threads("demo_assets")
        resources:
            **rule_resources("demo_assets"),
        params:
            settings=config["demo"],
        script:
            "../scripts/demo_assets.py"
