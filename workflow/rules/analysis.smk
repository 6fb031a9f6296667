# Stage analysis: where the teacher and the students fail on the dev set and how confident they are
# (results/analysis/{task}/), from their predictions, and the class distribution of the task's splits. A cheap job
# (seconds): a local rule, run where Snakemake runs. Library: kdprobe.report (analysis, predictions, calibration,
# prediction_plots). Rule score_sentences: the config's hand-written sentences (analysis.score_sentences.<task>, the
# thesis's perturbed CoLA sentences) scored by every trained model (kdprobe.predict.score).

#: The `analysis` keys of rule analyse_predictions.
ANALYSIS_SETTINGS = ("top_k", "calibration_bins", "histogram_bins")


rule analyse_predictions:
    input:
        **{model: f"results/predictions/{{task}}/{model}.tsv" for model in MODELS},
        **data_files("{task}"),
    output:
        summary="results/analysis/{task}/summary.md",
        models=analysis_report(
            "results/analysis/{task}/models.csv",
            "analysis_models",
            "scores and calibration",
        ),
        mistakes=analysis_report(
            "results/analysis/{task}/mistakes.csv",
            "analysis_mistakes",
            "most and least confident mistakes",
        ),
        hits=analysis_report(
            "results/analysis/{task}/hits.csv",
            "analysis_hits",
            "most and least confident hits",
        ),
        wrong="results/analysis/{task}/wrong.csv",
        mistake_sets=analysis_report(
            "results/analysis/{task}/mistake_sets.csv",
            "analysis_mistake_sets",
            "unique and shared mistakes",
        ),
        agreement=analysis_report(
            "results/analysis/{task}/agreement.csv",
            "analysis_agreement",
            "agreement table",
        ),
        overlap=analysis_report(
            "results/analysis/{task}/overlap.csv",
            "analysis_overlap",
            "hits and mistakes shared",
        ),
        correlation=analysis_report(
            "results/analysis/{task}/correlation.csv",
            "analysis_correlation",
            "confidence correlation",
        ),
        calibration="results/analysis/{task}/calibration.csv",
        classes=analysis_report(
            "results/analysis/{task}/classes.csv",
            "analysis_classes",
            "class distribution",
        ),
        confidence_plot=analysis_report(
            "results/analysis/{task}/confidence.png",
            "analysis_confidence",
            "confidence histograms",
        ),
        reliability_plot=analysis_report(
            "results/analysis/{task}/reliability.png",
            "analysis_reliability",
            "reliability diagrams",
        ),
        agreement_plot=analysis_report(
            "results/analysis/{task}/agreement.png",
            "analysis_agreement_plot",
            "agreement matrices",
        ),
        overlap_plot=analysis_report(
            "results/analysis/{task}/overlap.png",
            "analysis_overlap_plot",
            "overlap matrices",
        ),
        correlation_plot=analysis_report(
            "results/analysis/{task}/correlation.png",
            "analysis_correlation_plot",
            "confidence correlation plot",
        ),
        average_confidence_plot=analysis_report(
            "results/analysis/{task}/average_confidence.png",
            "analysis_average_confidence",
            "average confidence",
        ),
        classes_plot=analysis_report(
            "results/analysis/{task}/classes.png",
            "analysis_classes_plot",
            "class distribution plot",
        ),
    log:
        "logs/analyse_predictions/{task}.log",
    localrule: True
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("analyse_predictions", "analysis")
    resources:
        **rule_resources("analyse_predictions", "analysis"),
    params:
        models=MODELS,
        # the settings analyse reads (not score_sentences: its sentences change only rule score_sentences)
        settings={key: config["analysis"][key] for key in ANALYSIS_SETTINGS},
    script:
        "../scripts/analyse_predictions.py"


rule score_sentences:
    input:
        **{model: model_dir("{task}", model) for model in MODELS},
        labels="resources/data/{task}/labels.txt",
    output:
        analysis_report(
            "results/analysis/{task}/scored_sentences.csv",
            "analysis_scored_sentences",
            "hand-written sentences scored",
        ),
    log:
        "logs/score_sentences/{task}.log",
    benchmark:
        "logs/benchmarks/score_sentences/{task}.tsv"
    conda:
        "../../envs/kdprobe.yaml"
    threads: rule_threads("score_sentences", "analysis")
    resources:
        **rule_resources("score_sentences", "analysis"),
    params:
        models=MODELS,
        # the sentences (analysis.score_sentences.<task>) and the token limits the models were trained with
        sentences=lambda wc: sentences_to_score(wc.task),
        max_lengths=lambda wc: {
            model: kdconfig.model_max_length(config, wc.task, model)
            for model in MODELS
        },
    script:
        "../scripts/score_sentences.py"
