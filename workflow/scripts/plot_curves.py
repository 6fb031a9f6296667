"""Training-curve plots (rules `plot_teacher_curve`, `plot_gpt2_curve`, `plot_student_curves`):
`kdprobe.report.curve_plots.plot_teacher` / `plot_gpt2` (one input, the curve CSV) or `plot_students` (one input per
student, named by student, `input.teacher`, the teacher's metrics.json, and `input.seeds`, the extra seeds' curves
in the order of `params.seeds`, {student: [variant, ...]}; `params.losses` names each loss), chosen by
`params.stage`.
"""

from kdprobe.report import curve_plots as curves
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

stage, task, out = snakemake.params.stage, snakemake.wildcards.task, str(snakemake.output[0])


def plot():
    if stage == "students":
        losses = dict(snakemake.params.losses)
        extra = iter(str(path) for path in snakemake.input.seeds)
        seeds = {s: [next(extra) for _ in variants] for s, variants in snakemake.params.seeds.items()}
        curves.plot_students({s: str(snakemake.input[s]) for s in losses}, str(snakemake.input.teacher), task,
                             losses, out, seeds)
    elif stage == "teacher":
        curves.plot_teacher(str(snakemake.input[0]), task, out)
    else:
        curves.plot_gpt2(str(snakemake.input[0]), task, out)


run(snakemake, plot, device=False)
