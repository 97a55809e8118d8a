"""Faults around run folders (issue 19): overwrites, concurrent runs, signals, kills during training and during a
save, unreadable or unwritable files. One test (or more) per defect, for the language model and the classifier.

Crash tests run ``rnnkit`` in a child process, kill it (SIGKILL, SIGTERM, SIGINT) at a chosen moment (during
training, or paused inside a save by ``RNNKIT_TEST_PAUSE``, see :func:`rnnkit.training.atomic.pause_point`),
then run the next command with a timeout: it must neither hang nor lose the run.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from lm_cli_helpers import TINY, lm_test_env, run_cli  # noqa: F401 (lm_test_env: autouse)

SUB = [*TINY, "--threads", "1"]
CLASSIFY = ["--preset", "tiny", "--engine", "python", "--quiet", "--threads", "1", "--seed", "0", "--device", "cpu"]
POS = ["a good film", "good and warm", "truly good", "good fun", "so good", "the cast is good"]
NEG = ["a bad film", "bad and cold", "truly bad", "bad acting", "so bad", "the plot is bad"]


# ---------------------------------------------------------------------------------------------- helpers

@pytest.fixture
def tsv(tmp_path) -> dict[str, Path]:
    rows = [(t, "pos") for t in POS] + [(t, "neg") for t in NEG]
    train, valid = tmp_path / "train.tsv", tmp_path / "valid.tsv"
    train.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows * 2))
    valid.write_text("sentence\tlabel\ngood film\tpos\nbad film\tneg\n")
    return {"train": train, "valid": valid}


def _lm(corpus_dir, out, *extra) -> list:
    return ["train", "lm", "--train", corpus_dir / "train.txt", "--valid", corpus_dir / "valid.txt", "--out", out,
            *SUB, *extra]


def _classify(tsv, out, *extra) -> list:
    return ["train", "classify", "--train", tsv["train"], "--valid", tsv["valid"], "--out", out, *CLASSIFY, *extra]


def _train_args(task, corpus_dir, tsv, out, *extra) -> list:
    return _lm(corpus_dir, out, *extra) if task == "lm" else _classify(tsv, out, *extra)


def _error(capsys, *argv) -> str:
    code, _, err = run_cli(capsys, *argv)
    assert code == 2, (code, err)
    assert "Traceback" not in err
    last = err.rstrip("\n").splitlines()[-1]
    assert last.startswith("rnnkit: error: ") and err.count("rnnkit: error: ") == 1, err
    return last


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]


def _env(**extra) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}


class Child:
    """``rnnkit ARGV`` in a child process, its stderr in a file; always killed at the end of the test."""

    def __init__(self, tmp_path: Path, argv: list, **env) -> None:
        self.err_path = tmp_path / f"child-{time.monotonic_ns()}.err"
        self._err = open(self.err_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "rnnkit.cli.main", *map(str, argv)],
                                     stdout=subprocess.DEVNULL, stderr=self._err, env=_env(**env))

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def wait_for(self, what: str, ready, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if self.proc.poll() is not None:
                pytest.fail(f"the child ended (exit {self.proc.returncode}) before {what}:\n{self.stderr}")
            time.sleep(0.05)
        pytest.fail(f"timed out waiting for {what}:\n{self.stderr}")

    def wait_paused(self) -> None:
        self.wait_for("the pause point", lambda: "rnnkit-test: paused at" in self.stderr)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._err.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self._err.close()


@pytest.fixture
def children():
    started: list[Child] = []
    yield started
    for child in started:
        child.kill()


def _spawn(children, tmp_path, argv, **env) -> Child:
    child = Child(tmp_path, argv, **env)
    children.append(child)
    return child


def _next_command(*argv, timeout: float = 120) -> subprocess.CompletedProcess:
    """The command after a crash, in its own process with a timeout: a hang fails the test."""
    return subprocess.run([sys.executable, "-m", "rnnkit.cli.main", *map(str, argv)], capture_output=True,
                          text=True, timeout=timeout, env=_env())


def _metric_lines(out: Path) -> int:
    try:
        return len((out / "metrics.jsonl").read_text().splitlines())
    except FileNotFoundError:
        return 0


def _check_intact(out: Path) -> int:
    """The invariants of a run folder nobody is writing to: no leftovers or lock, weights and config.json of one
    save, finite weights, metrics without repeated records, none past the resume state's step; that step."""
    names = {p.name for p in out.iterdir()}
    assert not [n for n in names if n.endswith(".tmp")], names
    assert ".rnnkit.lock" not in names
    config = json.loads((out / "config.json").read_text())
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert f.metadata()["rnnkit_save_id"] == config["save_id"]
        assert all(torch.isfinite(f.get_tensor(k)).all() for k in f.keys())  # noqa: SIM118 (safe_open has no __iter__)
    step = torch.load(out / "resume.pt", weights_only=True)["step"]
    records = [(r["kind"], r["step"]) for r in _records(out)]
    assert len(records) == len(set(records)), records
    assert max(s for _, s in records) <= step
    return step


# ------------------------------------------------------------------------- defect 4: overwrite protection

@pytest.mark.parametrize("task", ["lm", "classify"])
def test_an_existing_run_is_refused_and_force_replaces_it_cleanly(tmp_path, corpus_dir, tsv, capsys, task):
    out = tmp_path / "run"
    assert run_cli(capsys, *_train_args(task, corpus_dir, tsv, out, "--max-steps", "4", "--log-every", "1"))[0] == 0
    before = _files(out)
    err = _error(capsys, *_train_args(task, corpus_dir, tsv, out, "--max-steps", "2"))
    assert f"{out} already holds a trained {task!r} run" in err and "--resume" in err and "--force" in err
    assert _files(out) == before
    code, _, err = run_cli(capsys, *_train_args(task, corpus_dir, tsv, out, "--max-steps", "2", "--log-every", "1",
                                                "--force"))
    assert code == 0, err
    assert "--force: replacing the run" in err
    assert [r["step"] for r in _records(out) if r["kind"] == "train"] == [1, 2]    # not appended to the old ones
    assert json.loads((out / "config.json").read_text())["step"] <= 2


@pytest.mark.parametrize("task", ["lm", "classify"])
def test_a_folder_that_is_not_a_run_is_never_written_without_force(tmp_path, corpus_dir, tsv, capsys, task):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"my": "settings"}')
    (out / "notes.txt").write_text("mine")
    before = _files(out)
    err = _error(capsys, *_train_args(task, corpus_dir, tsv, out, "--max-steps", "2"))
    assert f"{out} is not empty (config.json, notes.txt) and is not an rnnkit run" in err and "--force" in err
    assert _files(out) == before
    assert run_cli(capsys, *_train_args(task, corpus_dir, tsv, out, "--max-steps", "2", "--force"))[0] == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "config.json").read_text())["task"] == task


# ----------------------------------------------------------------- defect 5: a mistyped option on --resume

@pytest.mark.parametrize("task", ["lm", "classify"])
def test_a_resume_that_does_not_fit_changes_nothing_in_the_run(tmp_path, corpus_dir, tsv, capsys, task):
    out = tmp_path / "run"
    assert run_cli(capsys, *_train_args(task, corpus_dir, tsv, out, "--max-steps", "3"))[0] == 0
    before = _files(out)
    err = _error(capsys, "train", task, "--out", out, "--resume", "--hidden-size", "64", "--max-steps", "6")
    assert f"{out / 'resume.pt'} does not fit this model" in err and "shape mismatch" in err
    assert "saved (" in err and "vs model (" in err and "Error(s) in loading" not in err
    assert "typed with --resume: --hidden-size 64 (the run has 16)" in err
    assert _files(out) == before                                      # options.json above all
    code, _, err = run_cli(capsys, "train", task, "--out", out, "--resume", "--max-steps", "5")
    assert code == 0, err
    assert json.loads((out / "options.json").read_text())["hidden_size"] == 16


# ------------------------------------------------------------------------------ defect 6: one owner at a time

def test_a_second_training_into_a_busy_run_is_refused_and_a_killed_owner_frees_it(tmp_path, corpus_dir, capsys,
                                                                                  children):
    out = tmp_path / "run"
    first = _spawn(children, tmp_path, _lm(corpus_dir, out, "--max-steps", "100000", "--log-every", "1",
                                           "--eval-every", "5"), RNNKIT_TEST_PAUSE="rename:resume.pt@2")
    first.wait_paused()                                               # at step 10, holding the folder
    for extra in ([], ["--force"], ["--resume"]):
        err = _error(capsys, *_lm(corpus_dir, out, "--max-steps", "3", *extra))
        assert f"{out}: in use by another rnnkit command (pid {first.proc.pid} on " in err
        assert "rnnkit train lm --train" in err                       # the holder's command
    first.signal(signal.SIGKILL)
    first.wait()
    assert (out / ".rnnkit.lock").exists()                            # left behind, but nobody holds it
    result = _next_command("train", "lm", "--out", out, "--resume", "--max-steps", "12", timeout=120)
    assert result.returncode == 0, result.stderr
    assert _check_intact(out) == 12


def test_a_classifier_run_in_use_is_refused(tmp_path, tsv, capsys):
    from rnnkit.training.run_folder import RunFolder
    out = tmp_path / "run"
    with RunFolder(out, command="rnnkit train classify (the other one)"):
        err = _error(capsys, *_classify(tsv, out, "--max-steps", "2"))
    assert f"{out}: in use by another rnnkit command (pid {os.getpid()} on " in err
    assert "(the other one)" in err


# ---------------------------------------------------------------------------------------- defect 7: signals

@pytest.mark.parametrize("task, sig", [("lm", signal.SIGTERM), ("lm", signal.SIGINT), ("classify", signal.SIGTERM)])
def test_sigterm_and_sigint_save_and_print_the_resume_command(tmp_path, corpus_dir, tsv, children, capsys, task,
                                                              sig):
    out = tmp_path / "run"
    child = _spawn(children, tmp_path, _train_args(task, corpus_dir, tsv, out, "--max-steps", "100000",
                                                   "--epochs", "100000", "--log-every", "1", "--eval-every", "4"))
    child.wait_for("training", lambda: _metric_lines(out) >= 7)
    child.signal(sig)
    assert child.wait(timeout=60) == 128 + sig
    err = child.stderr
    name = signal.Signals(sig).name
    assert f"rnnkit: {name}: training state saved at step " in err
    assert f"continue with: rnnkit train {task} --out {out} --resume" in err
    assert "Traceback" not in err
    step = torch.load(out / "resume.pt", weights_only=True)["step"]
    assert f"saved at step {step:,} in" in err and step >= 6
    records = [(r["kind"], r["step"]) for r in _records(out)]
    assert max(s for _, s in records) == step                   # stopped at the end of the step under way
    code, _, err = run_cli(capsys, "train", task, "--out", out, "--resume", "--max-steps", str(step + 2))
    assert code == 0, err
    assert _check_intact(out) == step + 2


def test_a_signal_before_the_first_validation_says_no_model_is_saved_yet(tmp_path, corpus_dir, children):
    out = tmp_path / "run"
    child = _spawn(children, tmp_path, _lm(corpus_dir, out, "--max-steps", "100000", "--log-every", "1",
                                           "--eval-every", "100000"))
    child.wait_for("training", lambda: _metric_lines(out) >= 3)
    child.signal(signal.SIGINT)
    assert child.wait(timeout=60) == 128 + signal.SIGINT
    assert f"; no validation yet, so no model saved yet in {out}" in child.stderr
    assert "nan" not in child.stderr and not (out / "model.safetensors").exists()
    assert "training state saved at step " in child.stderr


def test_an_ensemble_interrupted_in_its_first_member_says_where_that_member_saved(tmp_path, tsv, children):
    out = tmp_path / "run"
    child = _spawn(children, tmp_path, _classify(tsv, out, "--ensemble", "2", "--max-steps", "100000",
                                                 "--epochs", "100000", "--log-every", "1", "--eval-every", "2"))
    child.wait_for("the first member's save", lambda: (out / "members/0/model.safetensors").is_file())
    child.signal(signal.SIGINT)
    assert child.wait(timeout=60) == 128 + signal.SIGINT
    assert (f"; no model saved yet in {out} (the ensemble's first member is unfinished; its best model so far is "
            f"in {out / 'members' / '0'})") in child.stderr
    assert not (out / "model.safetensors").exists() and "Traceback" not in child.stderr


def test_an_ensemble_interrupted_in_its_second_member_is_usable(tmp_path, tsv, children, capsys):
    """QA: after its first member the run folder holds an ensemble of one, which predict and eval couldn't load
    (its weights are named members.0.*), and the stop line said no model was saved."""
    out = tmp_path / "run"
    child = _spawn(children, tmp_path, _classify(tsv, out, "--ensemble", "2", "--max-steps", "100000",
                                                 "--epochs", "100000", "--log-every", "1", "--eval-every", "2",
                                                 "--patience", "1"))
    child.wait_for("the second member's save", lambda: (out / "members/1/model.safetensors").is_file())
    child.signal(signal.SIGINT)
    assert child.wait(timeout=60) == 128 + signal.SIGINT
    assert "no model saved yet" not in child.stderr and "best validation accuracy" in child.stderr
    code, out_text, err = run_cli(capsys, "predict", out, "good fun")
    assert code == 0 and out_text.split("\t")[0] in ("pos", "neg"), err


def test_a_second_signal_ends_the_process_at_once(tmp_path, corpus_dir, children, capsys):
    """The first SIGTERM arrives during a save (paused there): it is noted and the save goes on; the second ends
    the process at once. The state saved before is intact and resumes."""
    out = tmp_path / "run"
    child = _spawn(children, tmp_path, _lm(corpus_dir, out, "--max-steps", "1000", "--log-every", "1",
                                           "--eval-every", "2"), RNNKIT_TEST_PAUSE="rename:resume.pt@2")
    child.wait_paused()
    child.signal(signal.SIGTERM)
    time.sleep(1.0)
    assert child.proc.poll() is None                                 # the first one waits for the save
    child.signal(signal.SIGTERM)
    assert child.wait(timeout=20) == -signal.SIGTERM
    assert "second SIGTERM: stopping at once" in child.stderr
    result = _next_command("train", "lm", "--out", out, "--resume", "--max-steps", "6")
    assert result.returncode == 0, result.stderr
    assert _check_intact(out) == 6


# ------------------------------------------------------------------ defects 9, 10, 15: kills during a save

@pytest.mark.parametrize("point", ["rename:model.safetensors@2", "save:between-weights-and-config@2",
                                   "rename:resume.pt@2"])
def test_a_kill_during_a_save_loses_nothing(tmp_path, corpus_dir, children, capsys, point):
    """SIGKILL at a moment inside a save (a file written but not renamed; the weights renamed, config.json not
    yet): the run is still loadable and consistent, the next command neither hangs nor keeps the temporary
    files, and the resumed run has each step's record once."""
    out = tmp_path / "run"
    child = _spawn(children, tmp_path, _lm(corpus_dir, out, "--max-steps", "1000", "--log-every", "1",
                                           "--eval-every", "2", "--lr", "0.01"), RNNKIT_TEST_PAUSE=point)
    child.wait_paused()
    child.signal(signal.SIGKILL)
    child.wait()
    assert list(out.glob(".*.tmp")) or point.startswith("save:")     # a killed save left its temporary file
    if point.startswith("save:"):                                    # new weights beside the older config.json
        config = json.loads((out / "config.json").read_text())
        with safe_open(str(out / "model.safetensors"), "pt") as f:
            assert f.metadata()["rnnkit_save_id"] != config["save_id"]
    code, text, err = run_cli(capsys, "sample", out, "--length", "5", "--seed", "0")
    assert code == 0 and text.strip(), err
    result = _next_command("train", "lm", "--out", out, "--resume", "--max-steps", "8")
    assert result.returncode == 0, result.stderr
    assert _check_intact(out) == 8
    steps = [r["step"] for r in _records(out) if r["kind"] == "train"]
    assert steps == list(range(1, 9))


def test_kills_at_random_moments_never_lose_the_run(tmp_path, corpus_dir, capsys):
    """kill -9 at random moments of training (and so of its saves, every step here), twice; each next command
    resumes, and the run ends as a whole one."""
    out = tmp_path / "run"
    rng = random.Random(19)
    assert run_cli(capsys, *_lm(corpus_dir, out, "--max-steps", "2", "--eval-every", "1", "--log-every", "1"))[0] == 0
    for _ in range(2):
        lines = _metric_lines(out)
        child = Child(tmp_path, ["train", "lm", "--out", out, "--resume", "--max-steps", "100000",
                                 "--epochs", "100000"])
        try:
            child.wait_for("training", lambda n=lines: _metric_lines(out) > n + 2)
            time.sleep(rng.uniform(0.0, 1.5))
        finally:
            child.kill()
    step = torch.load(out / "resume.pt", weights_only=True)["step"]
    result = _next_command("train", "lm", "--out", out, "--resume", "--max-steps", str(step + 3))
    assert result.returncode == 0, result.stderr
    assert _check_intact(out) == step + 3
    assert [r["step"] for r in _records(out) if r["kind"] == "train"] == list(range(1, step + 4))


def test_a_kill_between_saves_leaves_no_repeated_records(tmp_path, corpus_dir, children, capsys):
    """Defect 15: records logged after the last save (steps the resumed run trains again) are dropped."""
    out = tmp_path / "run"
    child = _spawn(children, tmp_path, _lm(corpus_dir, out, "--max-steps", "100000", "--epochs", "100000",
                                           "--log-every", "1"))                 # a save at each epoch's end
    child.wait_for("training", lambda: _metric_lines(out) >= 20)
    for _ in range(100):                     # stop it where records are ahead of the last save, then kill it
        child.signal(signal.SIGSTOP)
        step = torch.load(out / "resume.pt", weights_only=True)["step"]
        if max(r["step"] for r in _records(out)) >= step + 3 and not list(out.glob(".*.tmp")):
            break
        child.signal(signal.SIGCONT)
        time.sleep(0.02)
    child.signal(signal.SIGKILL)
    child.wait()
    assert max(r["step"] for r in _records(out)) >= step + 3
    code, _, err = run_cli(capsys, "train", "lm", "--out", out, "--resume", "--max-steps", str(step + 5))
    assert code == 0, err
    assert [r["step"] for r in _records(out) if r["kind"] == "train"] == list(range(1, step + 6))
    assert _check_intact(out) == step + 5


# --------------------------------------------------------------------------------- defect 2: non-finite

@pytest.mark.parametrize("task", ["lm", "classify"])
def test_a_diverging_run_saves_nothing_non_finite(tmp_path, corpus_dir, tsv, capsys, task):
    out = tmp_path / "run"
    err = _error(capsys, *_train_args(task, corpus_dir, tsv, out, "--max-steps", "30", "--optimizer", "sgd",
                                      "--lr", "1e38", "--clip", "0", "--eval-every", "1"))
    assert "stopped" in err and "The last good checkpoint" not in err
    if (out / "model.safetensors").exists():
        assert "Kept in" in err
        assert _check_intact(out) >= 1
    else:
        assert f"No checkpoint was saved in {out} (none exists: nothing to resume)" in err
        assert not (out / "resume.pt").exists()
        err = _error(capsys, "eval" if task == "classify" else "sample", out, *(["--data", tsv["valid"]]
                                                                                if task == "classify" else []))
        assert "not a finished rnnkit run" in err


# ---------------------------------------------------------------------------- defect 8: one-line errors

@pytest.mark.parametrize("content, problem", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object of option values, got list"),
    ('{"hidden_size": "big"}', "--hidden-size"),
    ('{"lr": "fast"}', "--lr"),
])
def test_a_damaged_options_json_on_resume_is_one_line(char_run, capsys, content, problem):
    path = char_run / "options.json"
    path.write_text(content)
    before = _files(char_run)
    err = _error(capsys, "train", "lm", "--out", char_run, "--resume", "--max-steps", "8")
    assert str(path) in err and problem in err
    assert _files(char_run) == before


def test_a_config_json_whose_model_is_null_is_one_line(char_run, corpus_dir, capsys):
    path = char_run / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "model": None}))
    for argv in (["sample", char_run, "--length", "5"], ["eval", char_run, "--data", corpus_dir / "valid.txt"]):
        err = _error(capsys, *argv)
        assert str(path) in err and '"model" must be the language-model settings' in err and "got null" in err


@pytest.mark.parametrize("where", ["proc", "under-a-file"])
def test_an_unwritable_out_is_one_line(tmp_path, corpus_dir, char_run, capsys, where):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    base = Path("/proc/rnnkit-test") if where == "proc" else blocker
    err = _error(capsys, *_lm(corpus_dir, base / "run", "--max-steps", "2"))
    assert f"{base / 'run'}" in err and "cannot write here" in err
    err = _error(capsys, "report", char_run, "--text", corpus_dir / "valid.txt", "--out", base / "r.html")
    assert f"{base / 'r.html'}: cannot write here" in err
    err = _error(capsys, "gradients", char_run, "--text", "hello world", "--out", base / "g.png")
    assert f"{base / 'g.png'}: cannot write here" in err


def test_predict_to_an_unwritable_out_is_one_line(tmp_path, tsv, capsys):
    out = tmp_path / "clf"
    assert run_cli(capsys, *_classify(tsv, out, "--max-steps", "2"))[0] == 0
    (tmp_path / "a-file").write_text("x")
    for target in (Path("/proc/rnnkit-test/p.tsv"), tmp_path / "a-file" / "p.tsv"):
        err = _error(capsys, "predict", out, "--file", tsv["valid"], "--out", target)
        assert f"{target}: cannot write here" in err


# ------------------------------------------------------------------------------------- defect 11: umask

@pytest.mark.parametrize("task", ["lm", "classify"])
def test_run_files_honour_the_umask(tmp_path, corpus_dir, tsv, capsys, task):
    out = tmp_path / "run"
    before = os.umask(0o002)
    try:
        assert run_cli(capsys, *_train_args(task, corpus_dir, tsv, out, "--max-steps", "2"))[0] == 0
    finally:
        os.umask(before)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in out.iterdir()}
    assert set(modes.values()) == {"0o664"}, modes


# ------------------------------------------------------------------------ defect 12: a finished run resumed

@pytest.mark.parametrize("task", ["lm", "classify"])
def test_resuming_a_finished_run_trains_no_further(tmp_path, corpus_dir, tsv, capsys, task):
    out = tmp_path / "run"
    assert run_cli(capsys, *_train_args(task, corpus_dir, tsv, out, "--max-steps", "3", "--log-every", "1"))[0] == 0
    weights = (out / "model.safetensors").read_bytes()
    code, _, err = run_cli(capsys, "train", task, "--out", out, "--resume")
    assert code == 0, err
    assert "stopped (max_steps) after 3 steps" in err and "nothing was trained" in err
    assert torch.load(out / "resume.pt", weights_only=True)["step"] == 3
    assert max(r["step"] for r in _records(out)) == 3
    assert (out / "model.safetensors").read_bytes() == weights


# ----------------------------------------------------------------------------- defect 13: byte-order mark

def test_a_byte_order_mark_is_not_a_symbol(tmp_path, corpus_dir, capsys):
    text = (corpus_dir / "train.txt").read_text()
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode())
    out = tmp_path / "run"
    assert run_cli(capsys, "train", "lm", "--train", bom, "--out", out, "--max-steps", "2", *SUB)[0] == 0
    tokens = json.loads((out / "config.json").read_text())["tokenizer"]
    assert "\ufeff" not in json.dumps(tokens, ensure_ascii=False)
    code, out_text, err = run_cli(capsys, "eval", out, "--data", bom)
    assert code == 0, err
    assert "tokens, loss" in out_text
