"""The results page of a finished run: `kdprobe.report.results_page.write_results_page` (rule `results_page`).

Expects the inputs `teacher_metrics`, `teacher_curves`, `train`, `samples` (one per task, in the order of
`params.tasks`), `student_metrics`, `student_curves` (one per task and student, task outer), `predictions` (one per
task and model, the teacher first), `probes` (the pre-trained teacher's, then one per task and model),
`baseline_probes` (random encoders' and embed. baselines' tables, `results/probe/{scope}/{model}.csv`),
`teacher_model` (the first task's) and `benchmarks`; the params are `PageSettings`' fields but `target`, the output.
Paths print relative to the job's working directory (the workflow's).
"""

from pathlib import Path

from kdprobe.report.results_page import PageSettings, RunFiles, write_results_page
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive


def keyed(keys, paths):
    """{key: path}, the rule's list of paths paired with the keys it was built from (same length, same order)."""
    return dict(zip(keys, map(Path, paths), strict=True))


def page():
    inputs, params = snakemake.input, snakemake.params
    tasks, students = list(params.tasks), list(params.students)
    pairs = [(task, model) for task in tasks for model in ["teacher", *students]]
    files = RunFiles(
        teacher_metrics=keyed(tasks, inputs.teacher_metrics),
        teacher_curves=keyed(tasks, inputs.teacher_curves),
        student_metrics=keyed([(task, s) for task in tasks for s in students], inputs.student_metrics),
        student_curves=keyed([(task, s) for task in tasks for s in students], inputs.student_curves),
        predictions=keyed(pairs, inputs.predictions),
        train=keyed(tasks, inputs.train),
        samples=keyed(tasks, inputs.samples),
        probes=keyed([("pretrained", "teacher"), *pairs], inputs.probes)
        | {(Path(p).parent.name, Path(p).stem): Path(p) for p in inputs.baseline_probes},
        teacher_model=Path(inputs.teacher_model),
        benchmarks=[Path(path) for path in inputs.benchmarks],
    )
    settings = PageSettings(**dict(params.items()), target=str(snakemake.output[0]))
    write_results_page(files, settings, snakemake.output[0])


run(snakemake, page, device=False)
