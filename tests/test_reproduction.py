"""How close a run is to the thesis (`kdprobe.report.reproduction`): the reported figures' forms, the thesis's own
figures checked against its tex, the comparison on a small synthetic study, its plot, and the demo's table."""

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest
import yaml

from kdprobe.errors import ConfigError, InputError
from kdprobe.report.reproduction import (COLUMNS, THESIS, THESIS_FILE, Tolerance, parse_reported, read_reference,
                                         reference_file, reproduction_table, timed_jobs, wall_times)
from kdprobe.report.scores import STUDY_COLUMNS
from kdprobe.report.summary import write_reproduction
from kdprobe.report.summary_plots import reproduction_figure
from smk import ROOT, copy_project, planned_jobs, snakemake

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
#: Lines 1012-1250 of the final thesis (samsucik/knowledge-distil-bert @ e6fe56d4a6aba3921a61df09b043770f7e992ac3,
#: latex/s1513472-minf2.tex): tables tab:runtimes and tab:best-students.
TEX = Path(__file__).parent / "fixtures" / "thesis" / "s1513472-minf2.lines1012-1250.tex"
TEX_FIRST_LINE = 1012
TOLERANCE = Tolerance(score=1.0, params=0.02, time_ratio=3.0)


@pytest.mark.parametrize("text, quantity, value, approx", [
    ("59.9", "score", 59.9, False),
    ("50.44", "score", 50.44, False),
    ("340M", "params", 340e6, False),
    ("2.42M", "params_without_embeddings", 2.42e6, False),
    ("231554", "params", 231554.0, False),
    ("750ms", "ms_per_example", 750.0, False),
    ("0.68ms", "ms_per_example", 0.68, False),
    ("2s", "ms_per_example", 2000.0, False),
    ("$\\sim$30min", "wall_time", 1800.0, True),
    ("$\\sim$4h", "wall_time", 14400.0, True),
    ("3min", "wall_time", 180.0, False),
    ("17h", "wall_time", 61200.0, False),
    ("13.8s", "wall_time", 13.8, False),
    ("~2h", "wall_time", 7200.0, True),
])
def test_parse_reported_reads_every_form_the_references_use(text, quantity, value, approx):
    parsed, is_approx = parse_reported(text, quantity)
    assert parsed == pytest.approx(value)
    assert is_approx is approx


@pytest.mark.parametrize("text, quantity, message", [
    ("30min", "params", "unit 'min'"),
    ("76.4M", "score", "unit 'M'"),
    ("12", "wall_time", "unit ''"),
    ("fast", "ms_per_example", "not a number"),
    ("1.2.3", "score", "not a number"),
    ("5", "speed", "unknown quantity"),
])
def test_parse_reported_refuses_what_it_cannot_read(text, quantity, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_reported(text, quantity)


def test_every_thesis_figure_parses_and_cites_the_tex_line_it_is_on():
    path = reference_file(THESIS)
    figures = read_reference(path)
    assert len(figures) == 54
    tex = TEX.read_text(encoding="utf-8").splitlines()
    tables = {"tab:best-students": (1133, 1248), "tab:runtimes": (1016, 1038)}
    for row in figures.itertuples(index=False):
        match = re.fullmatch(r"(tab:[a-z-]+), line (\d+) \(.+\)", row.source)
        assert match, f"{path}:{row.line}: source {row.source!r} cites no table and line"
        first, last = tables[match[1]]
        line = int(match[2])
        assert first <= line <= last, f"{path}:{row.line}: line {line} is outside {match[1]}"
        assert row.reported in tex[line - TEX_FIRST_LINE], f"{path}:{row.line}: {row.reported!r} not on line {line}"
    # every figure of both tables: 9 models x (dev, test, size, RPE), 3 tasks x 6 timed stages
    assert figures["quantity"].value_counts().to_dict() == {"score": 18, "wall_time": 18, "ms_per_example": 9,
                                                          "params_without_embeddings": 6, "params": 3}


def test_the_thesis_figures_are_package_data():
    """Without the pyproject.toml entry, an installed (not editable) kdprobe has no thesis_reported.csv."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert any(fnmatch(THESIS_FILE, pattern) for pattern in declared["kdprobe.report"])
    assert (ROOT / "src" / "kdprobe" / "report" / THESIS_FILE).is_file()


def test_a_reference_that_is_not_a_file_names_the_config_key(tmp_path):
    with pytest.raises(ConfigError, match=r"summary\.reproduction\.reference.*no such file"):
        reference_file(str(tmp_path / "missing.csv"))
    assert reference_file(str(ROOT / "config" / "demo-reference.csv")).is_file()


def _reference(tmp_path, rows: list[str], name="reference.csv") -> Path:
    path = tmp_path / name
    path.write_text("# a comment\n" + ",".join(COLUMNS) + "\n" + "".join(f"{row}\n" for row in rows))
    return path


@pytest.mark.parametrize("row, message", [
    ("speed,cola,teacher,,1ms,here,", "unknown quantity 'speed'"),
    ("score,cola,teacher,,50,here,", "scores need dev or test"),
    ("params,cola,teacher,dev,5M,here,", "scores need dev or test"),
    ("params,cola,teacher,,5min,here,", "unit 'min'"),
    ("wall_time,cola,predict,,5s,here,", "expected one of teacher, gpt2"),
    ("score,cola,teacher,dev,50,,", "source are required"),
    ("score,cola,teacher,dev,50,here", "6 fields, expected 7"),
])
def test_a_bad_reference_row_is_refused_at_its_line(tmp_path, row, message):
    path = _reference(tmp_path, ["score,sst2,teacher,dev,70,fine,", row])
    with pytest.raises(InputError, match=rf"{re.escape(str(path))}:4: .*{re.escape(message)}"):
        read_reference(path)


def test_a_figure_given_twice_is_refused_naming_both_lines(tmp_path):
    path = _reference(tmp_path, ["score,cola,teacher,dev,50,a,", "score,cola,teacher,dev,51,b,"])
    with pytest.raises(InputError, match=r":4: score/cola/teacher/dev again \(first on line 3\)"):
        read_reference(path)


@pytest.mark.parametrize("settings, key", [
    ({"score": -1, "params": 0.02, "time_ratio": 3}, "score"),
    ({"score": 1, "params": True, "time_ratio": 3}, "params"),
    ({"score": 1, "params": 0.02, "time_ratio": 0.5}, "time_ratio"),
    ({"score": 1, "params": 0.02}, "time_ratio"),
])
def test_a_bad_tolerance_names_its_key(settings, key):
    with pytest.raises(ConfigError, match=rf"summary\.reproduction\.tolerance\.{key}"):
        Tolerance.from_config(settings)


@pytest.mark.parametrize("reproduction, key", [
    ({"tolerance": {"time_ratio": 0.5}}, "summary.reproduction.tolerance.time_ratio"),
    ({"tolerance": {"score": -1}}, "summary.reproduction.tolerance.score"),
    ({"tolerance": {"params": 0.02, "speed": 2}}, "summary.reproduction.tolerance.speed"),
    ({"reference": ""}, "summary.reproduction.reference"),
])
def test_the_schema_refuses_a_bad_reproduction_setting_naming_the_key(reproduction, key):
    from kdprobe.config import deep_merge, validate

    config = deep_merge(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()),
                        {"summary": {"reproduction": reproduction}})
    with pytest.raises(ConfigError, match=rf"config key '{re.escape(key)}'"):
        validate(config, ROOT / "workflow" / "schemas" / "config.schema.yaml")


def _benchmark(path: Path, seconds: float) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:00\t100\t200\t50\t60\t0\t0\t90\t{seconds}\n")
    return str(path)


def _benchmarks(tmp_path) -> list[str]:
    root = tmp_path / "logs" / "benchmarks"
    return [_benchmark(root / "teacher" / "cola.tsv", 100.0),
            _benchmark(root / "sample" / "cola" / "shard0.tsv", 10.0),
            _benchmark(root / "sample" / "cola" / "shard1.tsv", 20.0),
            _benchmark(root / "distil" / "cola" / "lstm_s.tsv", 5.0),
            # not what the thesis timed: a sweep point, a seed of the teacher, another stage
            _benchmark(root / "distil" / "cola" / "lstm_s" / "lr=0.1.tsv", 500.0),
            _benchmark(root / "teacher" / "cola" / "seed43.tsv", 500.0),
            _benchmark(root / "predict" / "cola" / "teacher.tsv", 500.0)]


def test_timed_jobs_keep_only_the_stages_the_thesis_timed(tmp_path):
    files = _benchmarks(tmp_path)
    assert {key: len(paths) for key, paths in timed_jobs(files).items()} == {
        ("cola", "teacher"): 1, ("cola", "sample"): 2, ("cola", "lstm_s"): 1}
    assert wall_times(files) == {("cola", "teacher"): 100.0, ("cola", "sample"): 20.0, ("cola", "lstm_s"): 5.0}


def _study() -> pd.DataFrame:
    return pd.DataFrame([
        {"task": "cola", "model": "teacher", "dev_score": 0.505, "test_score": 0.505, "test_is_dev": True,
         "params": 335_000_000, "params_without_embeddings": 302_000_000, "cpu_throughput": 500.0},
        {"task": "cola", "model": "bert_s", "dev_score": 0.30, "test_score": 0.30, "test_is_dev": True,
         "params": 3_000_000, "params_without_embeddings": 2_417_888, "cpu_throughput": 0.0},
        {"task": "sara", "model": "teacher", "dev_score": 0.88, "test_score": 0.80, "test_is_dev": False,
         "params": 335_000_000, "params_without_embeddings": 302_000_000, "cpu_throughput": 100.0},
    ])


REFERENCE_ROWS = [
    "score,cola,teacher,dev,50.0,t1,",            # ok: 0.5 points
    "score,cola,bert_s,dev,40.0,t2,",             # off: -10 points
    "score,cola,teacher,test,54.6,t3,",           # not comparable: CoLA's test.tsv repeats dev
    "score,sara,teacher,test,88.3,t4,",           # off: a real test set, -8.3 points
    "score,sst2,teacher,dev,91.5,t5,",            # not in this run: no SST-2
    "params,cola,teacher,,340M,t6,",              # ok: ratio 0.985
    "params_without_embeddings,cola,bert_s,,2.42M,t7,",   # ok
    "ms_per_example,cola,teacher,,1ms,t8,",       # ok: 2 ms, x2
    "ms_per_example,sara,teacher,,1ms,t9,",       # off: 10 ms, x10
    "ms_per_example,cola,bert_s,,1ms,t10,",       # not in this run: no throughput measured
    "wall_time,cola,teacher,,30s,t11,",           # off: 100 s, x3.3
    "wall_time,cola,sample,,$\\sim$10s,t12,",     # ok: the longest shard, 20 s
    "wall_time,cola,logits,,1h,t13,",             # not in this run: no logits benchmark
]
EXPECTED = ["ok", "off", "not comparable", "off", "not in this run", "ok", "ok", "ok", "off", "not in this run",
            "off", "ok", "not in this run"]


def test_the_table_says_ok_off_not_comparable_and_not_in_this_run(tmp_path):
    reference = read_reference(_reference(tmp_path, REFERENCE_ROWS))
    table = reproduction_table(reference, _study(), wall_times(_benchmarks(tmp_path)), TOLERANCE)
    assert table["status"].tolist() == EXPECTED
    assert table["flag"].tolist() == [status == "off" for status in EXPECTED]
    rows = table.set_index(["quantity", "task", "model", "split"])
    assert rows.loc[("score", "cola", "teacher", "dev"), "difference"] == pytest.approx(0.5)
    assert rows.loc[("score", "sara", "teacher", "test"), "ours"] == pytest.approx(80.0)
    assert rows.loc[("params", "cola", "teacher", ""), "ratio"] == pytest.approx(335 / 340)
    assert rows.loc[("ms_per_example", "cola", "teacher", ""), "ours"] == pytest.approx(2.0)
    assert rows.loc[("wall_time", "cola", "sample", ""), ["ours", "approx"]].tolist() == [20.0, True]
    assert rows.loc[("wall_time", "cola", "teacher", ""), ["unit", "tolerance"]].tolist() == ["s", 3.0]
    # a tolerance wide enough turns every compared figure ok, and changes nothing else
    loose = reproduction_table(reference, _study(), wall_times(_benchmarks(tmp_path)), Tolerance(20, 0.02, 10))
    assert loose["status"].tolist() == [s.replace("off", "ok") for s in EXPECTED]


def test_test_is_dev_read_back_as_text_still_marks_test_scores_not_comparable(tmp_path):
    study = _study().astype({"test_is_dev": object})
    study.loc[0, "test_is_dev"] = "True"
    reference = read_reference(_reference(tmp_path, ["score,cola,teacher,test,54.6,t,"]))
    assert reproduction_table(reference, study, {}, TOLERANCE)["status"].tolist() == ["not comparable"]


def test_write_reproduction_writes_the_table_and_the_plot(tmp_path):
    study_csv, out_csv, out_png = tmp_path / "study.csv", tmp_path / "reproduction.csv", tmp_path / "reproduction.png"
    _study().to_csv(study_csv, index=False)
    with pytest.raises(InputError, match="missing column"):  # the study table is read with its columns checked
        write_reproduction(_reference(tmp_path, REFERENCE_ROWS), study_csv, [], TOLERANCE, out_csv, out_png)
    study = _study()
    study[[c for c in STUDY_COLUMNS if c not in study.columns]] = 1
    study[STUDY_COLUMNS].to_csv(study_csv, index=False)
    table = write_reproduction(_reference(tmp_path, REFERENCE_ROWS), study_csv, _benchmarks(tmp_path), TOLERANCE,
                               out_csv, out_png)
    assert pd.read_csv(out_csv, keep_default_na=False)["status"].tolist() == EXPECTED == table["status"].tolist()
    assert mpimg.imread(out_png).shape[0] > 500


def test_the_plot_has_a_title_labelled_axes_with_units_and_legends(tmp_path):
    reference = read_reference(_reference(tmp_path, REFERENCE_ROWS))
    table = reproduction_table(reference, _study(), wall_times(_benchmarks(tmp_path)), TOLERANCE)
    fig = reproduction_figure(table)
    assert fig.get_suptitle() == "This run against the reference figures: 5 within tolerance, 4 off, 4 not compared"
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["Scores", "Sizes", "Runtime per example (CPU)", "Wall time per job"]
    assert "points" in axes[0].get_ylabel() and "parameters" in axes[1].get_ylabel()
    assert "ms" in axes[2].get_ylabel() and "seconds" in axes[3].get_ylabel()
    for ax in axes:
        labels = ax.get_legend_handles_labels()[1]
        assert any(label.startswith("tolerance") for label in labels), ax.get_title()
    assert "± 1 points" in axes[0].get_legend_handles_labels()[1][0]
    assert "1 more not comparable or not in this run" in axes[2].get_xlabel()  # BERT_S: no throughput
    assert any("off" in label for label in axes[3].get_legend_handles_labels()[1])


@pytest.mark.workflow
def test_the_default_target_compares_with_the_thesis_and_refuses_a_missing_reference(tmp_path):
    project = copy_project(tmp_path / "project")
    assert planned_jobs(project)["summary_reproduction"] == 1
    assert planned_jobs(project, "--configfile", "config/demo.yaml")["summary_reproduction"] == 1
    edit = tmp_path / "edit.yaml"
    edit.write_text(yaml.safe_dump({"summary": {"reproduction": {"reference": "nowhere.csv"}}}))
    proc = snakemake(project, "-n", "--configfile", str(edit), check=False)
    assert proc.returncode != 0
    assert "config key 'summary.reproduction.reference': 'nowhere.csv': no such file" in proc.stdout + proc.stderr


@pytest.mark.workflow
def test_the_demo_reproduces_its_own_reference(demo):
    """The demo compares itself against config/demo-reference.csv: every figure within the demo's tolerance."""
    table = pd.read_csv(demo / "results" / "summary" / "reproduction.csv", keep_default_na=False)
    reference = read_reference(demo / "config" / "demo-reference.csv")
    assert len(table) == len(reference)
    off = table[table["status"] != "ok"]
    assert off.empty, off[["quantity", "task", "model", "split", "reference", "ours", "status"]].to_string()
    assert (demo / "results" / "summary" / "reproduction.png").stat().st_size > 10_000
