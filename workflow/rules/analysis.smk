# Stage analysis: where the teacher and the students fail on the dev set and how confident they are
# (results/analysis/{task}/), from their predictions. A cheap job (seconds): a local rule, run where Snakemake runs.
# Library: kdprobe.report (analysis, predictions, calibration, prediction_plots).


rule analyse_predictions:
    input:
        **{model: f"results/predictions/{{task}}/{model}.tsv" for model in MODELS},
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
        calibration="results/analysis/{task}/calibration.csv",
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
        settings=config["analysis"],
    script:
        "../scripts/analyse_predictions.py"
