"""Training-curve plots (rules `plot_teacher_curve`, `plot_gpt2_curve`, `plot_student_curves`):
`kdprobe.plots.curves.plot_teacher` / `plot_gpt2` (one input, the curve CSV) or `plot_students` (one input per
student, named by student, and `input.teacher`, the teacher's metrics.json; `params.losses` names each loss),
chosen by `params.stage`.
"""

from kdprobe.plots import curves
from kdprobe.workflow import run

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

stage, task, out = snakemake.params.stage, snakemake.wildcards.task, str(snakemake.output[0])


def plot(device):
    if stage == "students":
        losses = dict(snakemake.params.losses)
        curves.plot_students({s: str(snakemake.input[s]) for s in losses}, str(snakemake.input.teacher), task,
                             losses, out)
    elif stage == "teacher":
        curves.plot_teacher(str(snakemake.input[0]), task, out)
    else:
        curves.plot_gpt2(str(snakemake.input[0]), task, out)


run(snakemake, plot)
