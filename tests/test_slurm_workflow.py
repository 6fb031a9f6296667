"""The demo workflow through the SLURM profile on the local test cluster (tests/slurm/start_slurm.sh).

`results/probe/sara/bert_s.csv` of config/demo.yaml runs through `--profile profiles/slurm --profile
profiles/slurm/local-test`, with tests/slurm/demo-gpu.yaml making the GPU rules ask for one GPU each as in the thesis
config (and shortening the work for time: 4 probing tasks, 4 teacher epochs for Sara, 100 pre-training steps).

Scenario 1 (one module-scoped run): a thread samples slurmctld (`scontrol -o show job -d`) every 0.5 s during the
run and cancels (`scancel`) the first `sample` job it sees RUNNING, a real transient failure. Checked: every
non-local job went through SLURM and nothing else did; the GPU rules were allocated a GPU and the CPU rules none;
the profile's job cap and the node's 2 GPUs were never exceeded; the cancelled shard was resubmitted (attempt 2,
a second SLURM job id, doubled memory) and the run completed.

Scenario 2: the same run from scratch (data preparation reused from scenario 1) is killed with SIGKILL once the
teacher has finished and other jobs are running; its orphaned SLURM jobs are cancelled, the directory unlocked and
the run repeated. Checked: work finished before the kill is neither redone nor touched, exactly the rest is run,
and every file under results/ equals scenario 1's byte for byte.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from slurm.kdprobe_slurm import job_env
from smk import PROJECT_FILES, copy_project

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

REPO = Path(__file__).resolve().parents[1]
OVERLAY = REPO / "tests" / "slurm" / "demo-gpu.yaml"
TARGET = "results/probe/sara/bert_s.csv"
CONFIGS = ("--configfile", "config/demo.yaml", "config/demo-gpu.yaml")
#: Rules whose config `resources:` section the overlay gives a GPU (the section `student` is rule `distil`).
SECTION_RULE = {"student": "distil"}
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "STAGE_OUT"}
RUN_TIMEOUT = 900


# --------------------------------------------------------------------------------------------- slurmctld sampling
_FIELD = re.compile(r"(?:^|\s)(JobId|JobName|JobState|Reason|Comment|WorkDir|JOB_GRES|GRES)=(\S*)")


def scontrol_jobs() -> dict[str, dict[str, str]]:
    """Every job slurmctld knows (running, pending, or finished less than MinJobAge ago), with its allocated GRES:
    `JOB_GRES` (kept after the job ends) and, while it holds them, the node's `GRES` with device indices."""
    out = subprocess.run(["scontrol", "-o", "show", "job", "-d"], capture_output=True, text=True, timeout=30,
                         check=False).stdout
    jobs = {}
    for line in out.splitlines():
        fields = dict(_FIELD.findall(line))
        if "JobId" in fields:
            jobs[fields["JobId"]] = fields
    return jobs


def gpu_indices(record: dict[str, str]) -> list[int]:
    """Indices of the GPUs a job holds right now (`GRES=gpu:fake:1(IDX:0)` on its node line while allocated)."""
    m = re.search(r"gpu\S*\(IDX:([\d,\-]+)\)", record.get("GRES", ""))
    if not m:
        return []
    out = []
    for part in m.group(1).split(","):
        lo, _, hi = part.partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    return out


def rule_of(record: dict[str, str]) -> str:
    """The rule of a plugin-submitted job, from its comment `rule_NAME_wildcards_...`."""
    m = re.fullmatch(r"rule_(.+?)(?:_wildcards_.*)?", record.get("Comment", ""))
    return m.group(1) if m else ""


class SlurmWatch(threading.Thread):
    """Samples slurmctld every `interval` s while a run goes on. With `cancel_rule`, it `scancel`s the first job of
    that rule (from `workdir`) that it sees RUNNING, once."""

    def __init__(self, workdir: Path, cancel_rule: str | None = None, interval: float = 0.5):
        super().__init__(daemon=True)
        self.workdir, self.cancel_rule, self.interval = str(Path(workdir).resolve()), cancel_rule, interval
        self.samples: list[tuple[float, dict[str, dict[str, str]]]] = []
        self.cancelled: dict[str, str] | None = None
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def run(self):
        try:
            while not self._halt.is_set():
                jobs = scontrol_jobs()
                self.samples.append((time.monotonic(), jobs))
                if self.cancel_rule and self.cancelled is None:
                    for rec in self.ours(jobs).values():
                        if rule_of(rec) == self.cancel_rule and rec["JobState"] == "RUNNING":
                            subprocess.run(["scancel", rec["JobId"]], check=True, timeout=30)
                            self.cancelled = rec
                            break
                self._halt.wait(self.interval)
        except Exception as err:  # noqa: BLE001  (surfaced by stop())
            self.error = err

    def stop(self):
        self._halt.set()
        self.join(timeout=60)
        if self.error:
            raise self.error

    def ours(self, jobs: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        return {i: r for i, r in jobs.items() if r.get("WorkDir") == self.workdir}

    def history(self) -> dict[str, list[dict[str, str]]]:
        """Job id -> every sample of it, for this run's jobs (by working directory)."""
        out: dict[str, list[dict[str, str]]] = {}
        for _, jobs in self.samples:
            for i, rec in self.ours(jobs).items():
                out.setdefault(i, []).append(rec)
        return out


# ------------------------------------------------------------------------------------------------ Snakemake runs
def snakemake_cmd(*args: str) -> list[str]:
    profiles = ["--profile", "profiles/slurm", "--profile", "profiles/slurm/local-test"]
    return [sys.executable, "-m", "snakemake", *args, *profiles, *CONFIGS]


def start_snakemake(workdir: Path, log: Path, *args: str) -> subprocess.Popen:
    env = job_env() | {"PYTHONUNBUFFERED": "1"}
    with open(log, "w") as fh:
        # its own session, so a SIGKILL can take it with any sbatch/squeue it has running (as if its host died)
        return subprocess.Popen(snakemake_cmd(*args), cwd=workdir, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)


def finish(proc: subprocess.Popen, log: Path, timeout: float = RUN_TIMEOUT) -> str:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # cancels its SLURM jobs
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise AssertionError(f"snakemake timed out after {timeout} s:\n{log.read_text()[-6000:]}")
    return log.read_text()


def run_snakemake(workdir: Path, name: str, *args: str, watch: SlurmWatch | None = None) -> tuple[str, int, float]:
    log = workdir / f"{name}.out"
    start = time.perf_counter()
    if watch:
        watch.start()
    try:
        proc = start_snakemake(workdir, log, *args)
        text = finish(proc, log)
    finally:
        if watch:
            watch.stop()
    return text, proc.returncode, time.perf_counter() - start


_BLOCK = re.compile(r"^(localrule|rule) (\S+):\n((?:    .*\n)+)", re.MULTILINE)


def scheduled(log: str) -> dict[str, dict]:
    """Snakemake job id -> {rule, local, outputs} for every job a run started (its `rule NAME:` blocks)."""
    jobs = {}
    for kind, rule, body in _BLOCK.findall(log):
        jobid = re.search(r"^    jobid: (\d+)$", body, re.MULTILINE)
        outputs = re.search(r"^    output: (.*)$", body, re.MULTILINE)
        if jobid:
            jobs[jobid.group(1)] = {"rule": rule, "local": kind == "localrule",
                                    "outputs": outputs.group(1).split(", ") if outputs else []}
    return jobs


def submissions(log: str) -> list[tuple[str, str]]:
    """(Snakemake job id, SLURM job id) for every sbatch submission, in order."""
    return re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+) ", log)


def finished(log: str) -> list[tuple[str, str]]:
    """(Snakemake job id, rule) of every job Snakemake saw finish (after writing its metadata)."""
    return re.findall(r"Finished jobid: (\d+) \(Rule: (\S+)\)", log)


def job_stats(log: str) -> Counter:
    """The first `Job stats:` table of a run: jobs per rule it planned."""
    counts: Counter = Counter()
    table = log.split("Job stats:", 1)[1]
    for line in table.splitlines()[3:]:
        m = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if not m or m.group(1) == "total":
            break
        counts[m.group(1)] += int(m.group(2))
    return counts


def sbatch_calls(log: str, slurm_job_rule: str) -> list[str]:
    return [line for line in log.splitlines()
            if line.startswith("sbatch call:") and f"--comment {slurm_job_rule} " in line]


def gpu_rules() -> set[str]:
    resources = yaml.safe_load(OVERLAY.read_text())["resources"]
    return {SECTION_RULE.get(section, section) for section, spec in resources.items() if spec.get("gpu", 0) >= 1}


def profile_jobs_cap(workdir: Path) -> int:
    """`jobs` of the last profile that sets it (a later --profile replaces top-level keys)."""
    cap = None
    for profile in ("profiles/slurm", "profiles/slurm/local-test"):
        cap = yaml.safe_load((workdir / profile / "config.yaml").read_text()).get("jobs", cap)
    return int(cap)


def node_gpus() -> int:
    out = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True, timeout=30, check=True).stdout
    return sum(int(m) for m in re.findall(r"gpu(?::\w+)?:(\d+)", out))


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def mtimes(workdir: Path, paths) -> dict[str, int]:
    """mtime_ns of each path and, for directories, of everything below it."""
    out = {}
    for rel in paths:
        path = workdir / rel
        for p in [path, *(sorted(path.rglob("*")) if path.is_dir() else [])]:
            out[str(p.relative_to(workdir))] = p.stat().st_mtime_ns
    return out


def new_workdir(dest: Path, source: Path | None = None) -> Path:
    """A project copy with the GPU overlay as config/demo-gpu.yaml; from `source` (a scenario-1 directory, so both
    runs have the very same workflow and config even if the checkout changes meanwhile) or from the checkout."""
    if source is None:
        copy_project(dest)
        shutil.copy2(OVERLAY, dest / "config" / "demo-gpu.yaml")
    else:
        dest.mkdir(parents=True)
        for name in PROJECT_FILES:
            (shutil.copytree if (source / name).is_dir() else shutil.copy2)(source / name, dest / name)
    return dest


def seed_prepared_data(source: Path, dest: Path):
    """Copy `resources/` (demo assets and prepared data: the two CPU jobs before any training) with their mtimes and
    Snakemake metadata, so scenario 2 starts at the teacher and GPT-2."""
    shutil.copytree(source / "resources", dest / "resources")
    meta_src, meta_dst = source / ".snakemake" / "metadata", dest / ".snakemake" / "metadata"
    for path in meta_src.rglob("*"):
        if path.is_file():
            rel = path.relative_to(meta_src)
            if base64.urlsafe_b64decode("".join(rel.parts)).decode().startswith("resources/"):
                (meta_dst / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, meta_dst / rel)


# ------------------------------------------------------------------------------------------------------ scenario 1
@pytest.fixture(scope="module")
def uninterrupted(slurm_cluster, tmp_path_factory):
    """Scenario 1: the whole run to TARGET, with the first `sample` job cancelled once it runs."""
    workdir = new_workdir(tmp_path_factory.mktemp("slurm_run1") / "project")
    watch = SlurmWatch(workdir, cancel_rule="sample")
    log, rc, wall = run_snakemake(workdir, "run", TARGET, "--verbose", watch=watch)
    print(f"\nscenario 1 (uninterrupted run, one shard cancelled): {wall:.0f} s wall")
    assert rc == 0 and "steps (100%) done" in log, f"snakemake failed ({rc}):\n{log[-8000:]}"
    return {"workdir": workdir, "log": log, "watch": watch, "wall": wall}


def test_jobs_went_through_slurm(uninterrupted, slurm_cluster):
    log, watch, workdir = uninterrupted["log"], uninterrupted["watch"], uninterrupted["workdir"]
    jobs, subs, history = scheduled(log), submissions(log), watch.history()
    assert jobs, log[-4000:]
    by_job: dict[str, list[str]] = {}
    for jobid, slurm_id in subs:
        by_job.setdefault(jobid, []).append(slurm_id)
    # Every job has a SLURM job id: the DAG of TARGET holds no local rule (fetch_* would be, when in the DAG).
    remote = {j for j, info in jobs.items() if not info["local"]}
    local = {j for j, info in jobs.items() if info["local"]}
    assert not local, jobs
    assert remote == set(by_job), f"non-local jobs {sorted(remote)} vs submitted {sorted(by_job)}"
    # slurmctld knows each of them, under the rule's comment, from this directory; and knows no others from here.
    slurm_ids = {s for _, s in subs}
    assert set(history) == slurm_ids, f"slurmctld: {sorted(history)}; log: {sorted(slurm_ids)}"
    for jobid, ids in by_job.items():
        for slurm_id in ids:
            assert rule_of(history[slurm_id][-1]) == jobs[jobid]["rule"], history[slurm_id][-1]
    cancelled = watch.cancelled["JobId"]
    final = {i: recs[-1]["JobState"] for i, recs in history.items()}
    assert final == {i: "CANCELLED" if i == cancelled else "COMPLETED" for i in slurm_ids}, final
    # The run's job name (the plugin's run UUID) finds the same jobs in squeue (those younger than MinJobAge).
    by_name = slurm_cluster.jobs_of_run(slurm_cluster.run_id(log))
    assert by_name and set(by_name) <= slurm_ids and subs[-1][1] in by_name, by_name
    assert (workdir / TARGET).is_file()


def test_gpu_rules_held_a_gpu(uninterrupted):
    log, history = uninterrupted["log"], uninterrupted["watch"].history()
    wanted = gpu_rules()
    assert wanted >= {"teacher", "gpt2", "sample", "logits", "distil", "probe"}
    seen = set()
    for slurm_id, recs in history.items():
        rule = rule_of(recs[-1])
        held = sorted({i for rec in recs for i in gpu_indices(rec)})
        job_gres = {rec.get("JOB_GRES", "") for rec in recs} - {"", "(null)"}
        calls = sbatch_calls(log, recs[-1]["Comment"])
        assert calls, f"no sbatch call for {recs[-1]['Comment']}"
        if rule in wanted:
            seen.add(rule)
            assert all("--gpus=1" in call for call in calls), calls
            assert any(re.fullmatch(r"gpu(:\w+)?:1", g) for g in job_gres), (slurm_id, job_gres)
            if recs[-1]["JobState"] == "COMPLETED":  # seen while running: it held exactly one of the node's GPUs
                assert len(held) == 1, (slurm_id, rule, held)
        else:  # demo_data, demo_<model>, prepare_data: CPU jobs, no GPU asked for or given
            assert not any("--gpus" in call or "--gres" in call for call in calls), calls
            assert not job_gres and not held, (slurm_id, rule, job_gres, held)
    assert seen == wanted & {rule_of(r[-1]) for r in history.values()} and "probe" in seen, seen


def test_concurrency_stayed_within_both_caps(uninterrupted):
    watch, workdir = uninterrupted["watch"], uninterrupted["workdir"]
    cap, gpus = profile_jobs_cap(workdir), node_gpus()
    assert gpus == 2
    wanted = gpu_rules()
    max_active = max_gpu_jobs = 0
    pressure = False  # did SLURM ever hold one of our GPU jobs back because all GPUs were taken?
    for _, jobs in watch.samples:
        ours = watch.ours(jobs)
        active = [r for r in ours.values() if r["JobState"] in ACTIVE]
        held = [i for rec in jobs.values() for i in gpu_indices(rec)]  # node-wide: the GPUs are the node's
        ours_gpu = [r for r in active if r["JobState"] == "RUNNING" and rule_of(r) in wanted]
        assert len(active) <= cap, f"{len(active)} of this run's jobs queued or running > jobs: {cap}"
        assert len(held) == len(set(held)) <= gpus, f"GPUs held: {held}"
        assert len(ours_gpu) <= gpus, [r["Comment"] for r in ours_gpu]
        max_active, max_gpu_jobs = max(max_active, len(active)), max(max_gpu_jobs, len(held))
        pressure |= len(held) == gpus and any(
            r["JobState"] == "PENDING" and rule_of(r) in wanted for r in active)
    print(f"\nmax jobs queued or running: {max_active} (cap {cap}); max GPUs held: {max_gpu_jobs} (node {gpus}); "
          f"{len(watch.samples)} samples")
    assert max_gpu_jobs == gpus and pressure, "the GPU cap was never reached: the check proved nothing"


def test_cancelled_shard_was_retried(uninterrupted):
    log, watch, workdir = uninterrupted["log"], uninterrupted["watch"], uninterrupted["workdir"]
    assert watch.cancelled, "no sample job was seen running, so none was cancelled"
    first = watch.cancelled["JobId"]
    comment = watch.cancelled["Comment"]  # rule_sample_wildcards_sara_<shard>
    subs = submissions(log)
    jobid = next(j for j, s in subs if s == first)
    ids = [s for j, s in subs if j == jobid]
    assert len(ids) == 2 and ids[0] == first, f"submissions of job {jobid}: {ids}"
    assert f"SLURM-job '{first}' failed, SLURM status is: 'CANCELLED'" in log
    assert re.search(rf"Trying to restart job {jobid}\b", log)
    history = watch.history()
    assert history[ids[1]][-1]["JobState"] == "COMPLETED" and history[ids[1]][-1]["Comment"] == comment
    # attempt 2: memory and runtime (minutes) of the overlay scaled by the attempt number
    spec = yaml.safe_load(OVERLAY.read_text())["resources"]["sample"]
    calls = sbatch_calls(log, comment)
    assert len(calls) == 2, calls
    for attempt, call in enumerate(calls, start=1):
        assert f" --mem {spec['mem_mb'] * attempt} " in call and f" -t {spec['runtime'] * attempt} " in call, call
    # the failed job's SLURM log is kept, successful ones are deleted (slurm-keep-successful-logs: false)
    shard = comment.rsplit("_", 1)[1]
    assert (workdir / f"logs/slurm/rule_sample/sara_{shard}/{first}.log").is_file()
    assert not (workdir / f"logs/slurm/rule_sample/sara_{shard}/{ids[1]}.log").exists()
    assert (workdir / TARGET).is_file() and (workdir / f"results/augment/sara/shard{shard}.parquet").is_file()


# ------------------------------------------------------------------------------------------------------ scenario 2
def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended ({proc.returncode}) before {what}:\n{log.read_text()[-6000:]}")
        if time.monotonic() > deadline:
            proc.send_signal(signal.SIGINT)
            raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-6000:]}")
        time.sleep(0.25)


def cancel_leftovers(watch: SlurmWatch, timeout: float = 60) -> dict[str, str]:
    """scancel, by id, every job of this run's directory still queued or running, until none is left; also one
    that an sbatch call still under way submits meanwhile. Returns {job id: rule} of those cancelled."""
    left: dict[str, str] = {}
    deadline, quiet = time.monotonic() + timeout, 0
    while quiet < 2:  # two checks in a row with nothing of this run active
        active = {i: rule_of(r) for i, r in watch.ours(scontrol_jobs()).items() if r["JobState"] in ACTIVE}
        if active.keys() - left.keys():
            subprocess.run(["scancel", *(active.keys() - left.keys())], check=True, timeout=30)
        left |= active
        quiet = 0 if active else quiet + 1
        assert time.monotonic() < deadline, f"cancelled jobs did not end: {active}"
        time.sleep(0.5)
    return left


@pytest.fixture(scope="module")
def resumed(uninterrupted, tmp_path_factory):
    """Scenario 2: start from scratch (prepared data reused), SIGKILL Snakemake mid-run, cancel what it left in
    SLURM, unlock, rerun to completion."""
    source = uninterrupted["workdir"]
    workdir = new_workdir(tmp_path_factory.mktemp("slurm_run2") / "project", source=source)
    seed_prepared_data(source, workdir)
    start = time.perf_counter()

    # 1. run until the teacher has finished (Snakemake logged it, so its metadata is written) and jobs are running
    killed_log = workdir / "killed.out"
    watch = SlurmWatch(workdir)
    watch.start()
    proc = start_snakemake(workdir, killed_log, TARGET, "--verbose")

    def teacher_done_and_jobs_running():
        if not any(rule == "teacher" for _, rule in finished(killed_log.read_text())):
            return False
        return bool(watch.samples) and any(
            r["JobState"] == "RUNNING" for r in watch.ours(watch.samples[-1][1]).values())

    try:
        wait_for(teacher_done_and_jobs_running, RUN_TIMEOUT, "the teacher to finish", proc, killed_log)
    except BaseException:
        cancel_leftovers(watch)
        raise
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    kill_time = time.perf_counter() - start
    killed = killed_log.read_text()
    jobs_before = scheduled(killed)
    done_before = {jobid for jobid, _ in finished(killed)}
    outputs_before = [out for j in done_before for out in jobs_before[j]["outputs"]]
    assert outputs_before and (workdir / ".snakemake" / "locks").is_dir() and any(
        (workdir / ".snakemake" / "locks").iterdir()), "SIGKILL should leave the directory locked"

    # 2. the SLURM jobs it left behind keep running: cancel them by id and wait until they are gone
    left = cancel_leftovers(watch)
    watch.stop()
    assert left, "nothing was running when Snakemake was killed"
    # What finished (by Snakemake's account) and what was seeded: their files, with mtimes, before the rerun.
    kept = mtimes(workdir, [*outputs_before, "resources"])
    # Every output of the killed run present now: a job that Snakemake saw finish in the instant before SIGKILL
    # has complete outputs (no incomplete marker) but may lack its "Finished" log line.
    present = mtimes(workdir, [o for job in jobs_before.values() for o in job["outputs"] if (workdir / o).exists()])

    # 3. unlock and rerun the same command
    proc_unlock = subprocess.run(snakemake_cmd(TARGET, "--unlock"), cwd=workdir, env=job_env(), check=False,
                                 capture_output=True, text=True, timeout=120)
    assert proc_unlock.returncode == 0, proc_unlock.stdout + proc_unlock.stderr
    rerun_watch = SlurmWatch(workdir)
    rerun, rc, _ = run_snakemake(workdir, "rerun", TARGET, "--verbose", watch=rerun_watch)
    wall = time.perf_counter() - start
    print(f"\nscenario 2 (killed after {kill_time:.0f} s, then unlocked and rerun): {wall:.0f} s wall; "
          f"finished before the kill: {sorted(jobs_before[j]['rule'] for j in done_before)}; "
          f"cancelled: {sorted(left.values())}")
    assert rc == 0 and "steps (100%) done" in rerun, f"rerun failed ({rc}):\n{rerun[-8000:]}"
    return {"workdir": workdir, "killed": killed, "rerun": rerun, "kept": kept, "left": left, "present": present,
            "done_before": done_before, "jobs_before": jobs_before, "rerun_watch": rerun_watch}


def test_resume_after_sigkill_redoes_only_unfinished_work(resumed):
    workdir, killed, rerun = resumed["workdir"], resumed["killed"], resumed["rerun"]
    jobs_before, done_before = resumed["jobs_before"], resumed["done_before"]
    done_rules = Counter(jobs_before[j]["rule"] for j in done_before)
    assert done_rules["teacher"] == 1, done_rules
    # Jobs that finished as Snakemake was killed, before it logged them: all outputs there after the kill, and the
    # rerun did not redo them. Only a job running at the kill can be one (at most one per cancelled job).
    redone = {o for job in scheduled(rerun).values() for o in job["outputs"]}
    unlogged = [j for j, job in jobs_before.items()
                if j not in done_before and job["outputs"] and not redone & set(job["outputs"])
                and all(o.rstrip("/") in resumed["present"] for o in job["outputs"])]
    assert len(unlogged) <= len(resumed["left"]), unlogged
    assert {jobs_before[j]["rule"] for j in unlogged} <= set(resumed["left"].values()), (unlogged, resumed["left"])
    # The rerun planned exactly what the killed run had planned minus what it had finished; the seeded data
    # preparation was not planned by either.
    finished_rules = done_rules + Counter(jobs_before[j]["rule"] for j in unlogged)
    planned_before, planned_rerun = job_stats(killed), job_stats(rerun)
    assert planned_rerun == planned_before - finished_rules, (planned_before, finished_rules, planned_rerun)
    assert not {"demo_data", "demo_bert", "prepare_data", "teacher"} & set(planned_rerun), planned_rerun
    # Jobs running at the kill were redone (rerun-incomplete), finished outputs untouched (same mtime).
    assert mtimes(workdir, resumed["kept"]) == resumed["kept"]
    outputs = [o.rstrip("/") for j in unlogged for o in jobs_before[j]["outputs"]]
    assert mtimes(workdir, outputs) == {k: v for k, v in resumed["present"].items()
                                        if any(k == o or k.startswith(o + "/") for o in outputs)}
    # The rerun submitted only new SLURM jobs, none of the cancelled ones is reused, and its caps held too.
    ids = {s for _, s in submissions(rerun)}
    assert ids and not ids & set(resumed["left"])
    watch = resumed["rerun_watch"]
    cap = profile_jobs_cap(workdir)
    for _, jobs in watch.samples:
        assert sum(r["JobState"] in ACTIVE for r in watch.ours(jobs).values()) <= cap
        assert len([i for rec in jobs.values() for i in gpu_indices(rec)]) <= node_gpus()


def test_resumed_outputs_equal_uninterrupted_run(uninterrupted, resumed):
    first, second = uninterrupted["workdir"] / "results", resumed["workdir"] / "results"
    assert (second.parent / TARGET).is_file()
    a = {k: v for k, v in files_under(first).items() if not k.startswith(".state/")}
    b = {k: v for k, v in files_under(second).items() if not k.startswith(".state/")}
    assert sorted(a) == sorted(b)
    for key in ("probe/sara/bert_s.csv", "students/sara/bert_s/metrics.json"):
        assert a[key] == b[key], f"{key} differs:\n{a[key][:2000]!r}\n{b[key][:2000]!r}"
    differ = sorted(k for k in a if a[k] != b[k])
    assert not differ, f"files that differ between the uninterrupted and the resumed run: {differ}"
