"""Run folders (issue 19): one owner at a time, atomic saves that belong together, files that honour the umask,
leftovers cleared, nothing non-finite saved, resumes that neither repeat nor overshoot."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch
from safetensors import safe_open

from lm_train_utils import HELLO, char_task, lm_test_env, records, tiny_model  # noqa: F401 (autouse)
from rnnkit.tasks.language_modeling import load_run as load_lm
from rnnkit.training import TrainConfig, Trainer, TrainingError
from rnnkit.training.atomic import WriteError, append_jsonl, check_writable, write_json
from rnnkit.training.checkpoint import read_config, repair_config, save_run
from rnnkit.training.run_folder import LOCK_FILE, RunFolder, RunFolderError


def _trainer(run_dir, max_steps=6, eval_every=2, lr=0.01, optimizer="adam", clip=5.0, seed=0):
    torch.manual_seed(seed)
    task = char_task(HELLO * 21, "hello world\nhello\n", batch_size=4, bptt=8, eval_batch_size=1)
    model = tiny_model(task, hidden=8, embed=4)
    cfg = TrainConfig(optimizer=optimizer, lr=lr, max_steps=max_steps, eval_every=eval_every, log_every=1,
                      clip=clip, device="cpu")
    return Trainer(model, task, cfg, run_dir, quiet=True)


# ---------------------------------------------------------------------------------------------- defect 6: lock

def test_a_second_owner_is_refused_naming_the_holder(tmp_path):
    first = RunFolder(tmp_path / "run", command="rnnkit train lm --out run").acquire()
    try:
        with pytest.raises(RunFolderError) as err:
            RunFolder(tmp_path / "run").acquire()
        message = str(err.value)
        assert "in use by another rnnkit command" in message
        assert f"pid {os.getpid()}" in message and "rnnkit train lm --out run" in message
    finally:
        first.release()
    with RunFolder(tmp_path / "run"):                                  # free again once released
        pass


def test_a_lock_whose_holder_was_killed_is_not_waited_for(tmp_path):
    """The holder dies by SIGKILL with the lock file (and its pid) left behind: the kernel has dropped the flock,
    the next owner takes the folder at once."""
    code = ("import sys, time; from rnnkit.training.run_folder import RunFolder; "
            "RunFolder(sys.argv[1], command='holder').acquire(); print('locked', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderError, match=f"pid {child.pid} "):
            RunFolder(tmp_path / "run").acquire()
    finally:
        child.kill()
        child.wait(timeout=30)
    assert (tmp_path / "run" / LOCK_FILE).read_text().startswith(f"pid {child.pid} ")   # left by the killed holder
    started = time.monotonic()
    with RunFolder(tmp_path / "run") as folder:
        assert folder.held
    assert time.monotonic() - started < 5


def test_a_folder_created_by_a_command_that_failed_is_removed_again(tmp_path):
    with pytest.raises(ValueError):
        with RunFolder(tmp_path / "new"):
            raise ValueError("validation failed")
    assert not (tmp_path / "new").exists()
    (tmp_path / "kept").mkdir()
    with pytest.raises(ValueError):
        with RunFolder(tmp_path / "kept"):
            raise ValueError("validation failed")
    assert (tmp_path / "kept").is_dir() and list((tmp_path / "kept").iterdir()) == []


# ------------------------------------------------------------------------------------ defect 4: overwrite

def test_check_refuses_a_run_or_a_foreign_folder_without_resume_or_force(tmp_path):
    trainer = _trainer(tmp_path / "run", max_steps=2)
    trainer.fit()
    write_json(tmp_path / "run" / "options.json", {})             # what `rnnkit train` writes beside the run
    with RunFolder(tmp_path / "run") as folder:
        with pytest.raises(RunFolderError, match=r"already holds a trained 'lm' run, best model from step 2 .*"
                                                 r"--resume.*--force"):
            folder.check(resume=False, force=False)
        assert folder.check(resume=True, force=False) is None
        with pytest.raises(RunFolderError, match="not both"):
            folder.check(resume=True, force=True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my notes")
    with RunFolder(tmp_path / "mine") as folder:
        with pytest.raises(RunFolderError, match=r"is not empty \(notes.txt\) and is not an rnnkit run"):
            folder.check(resume=False, force=False)
        folder.check(resume=False, force=True)
        folder.commit(force=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "my notes"          # --force keeps others' files


def test_force_replaces_the_run_files_so_metrics_start_afresh(tmp_path):
    _trainer(tmp_path / "run", max_steps=4).fit()
    with RunFolder(tmp_path / "run") as folder:
        folder.check(resume=False, force=True)
        folder.commit(force=True)
        assert folder.contents() == []
    trainer = _trainer(tmp_path / "run", max_steps=2)
    trainer.fit()
    assert [r["step"] for r in records(tmp_path / "run", "train")] == [1, 2]


# ------------------------------------------------------------------------- defects 9, 11: leftovers, umask

def test_atomic_files_honour_the_umask(tmp_path):
    before = os.umask(0o002)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        save_run(tmp_path, torch.nn.Linear(2, 2), {"task": "x"})
        append_jsonl(tmp_path / "m.jsonl", {"step": 1})
    finally:
        os.umask(before)
    for name in ("a.json", "model.safetensors", "config.json", "m.jsonl"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o664, name


def test_commit_removes_the_temporary_files_a_kill_left(tmp_path):
    _trainer(tmp_path, max_steps=2).fit()
    for name in (".resume.pt.a1b2c3d4.tmp", ".config.json.k9_xq2zz.tmp", ".model.safetensors.00ff00ff.tmp"):
        (tmp_path / name).write_bytes(b"half written")
    (tmp_path / ".my-own.tmp").write_text("not ours")
    with RunFolder(tmp_path) as folder:
        removed = folder.commit(resume=True)
    assert sorted(removed) == [".config.json.k9_xq2zz.tmp", ".model.safetensors.00ff00ff.tmp",
                               ".resume.pt.a1b2c3d4.tmp"]
    assert (tmp_path / ".my-own.tmp").exists()


@pytest.mark.parametrize("where", ["under-a-file", "proc"])
def test_an_unwritable_path_is_a_write_error_naming_it(tmp_path, where):
    (tmp_path / "file").write_text("x")
    path = tmp_path / "file" / "out.png" if where == "under-a-file" else "/proc/rnnkit-test/out.png"
    with pytest.raises(WriteError, match="cannot write here") as err:
        check_writable(path)
    assert str(err.value).startswith(f"{path}: cannot write here (")
    if where == "under-a-file":
        assert f"{tmp_path / 'file'}: a file of that name is in the way" in str(err.value)


# ---------------------------------------------------------------------------------- defect 10: one save

def test_weights_and_config_of_one_save_share_an_id(tmp_path):
    trainer = _trainer(tmp_path, max_steps=4)
    trainer.fit()
    config = json.loads((tmp_path / "config.json").read_text())
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        assert f.metadata()["rnnkit_save_id"] == config["save_id"] == trainer.best_save_id


def test_a_kill_between_weights_and_config_never_pairs_them_wrongly(tmp_path):
    """The weights of the newer save are in place, config.json is still the older save's (a kill between the two
    renames): loading uses the configuration saved with the weights, and the next owner rewrites config.json."""
    model = torch.nn.Linear(3, 2)
    save_run(tmp_path, model, {"task": "x", "step": 1})
    older = (tmp_path / "config.json").read_text()
    save_run(tmp_path, model, {"task": "x", "step": 2})
    (tmp_path / "config.json").write_text(older)
    assert read_config(tmp_path)["step"] == 2
    assert repair_config(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["step"] == 2
    assert not repair_config(tmp_path)
    (tmp_path / "config.json").unlink()                          # killed before the first config.json was renamed
    assert read_config(tmp_path)["step"] == 2


# ------------------------------------------------------------------------------ defect 2: nothing non-finite

def test_non_finite_weights_are_never_saved(tmp_path):
    model = torch.nn.Linear(3, 2)
    with torch.no_grad():
        model.bias[0] = float("inf")
    with pytest.raises(ValueError, match="not finite"):
        save_run(tmp_path, model, {"task": "x"})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("eval_every", [1, 5])
def test_a_diverging_run_saves_nothing_non_finite_and_says_what_is_kept(tmp_path, eval_every):
    trainer = _trainer(tmp_path, max_steps=20, eval_every=eval_every, lr=1e38, optimizer="sgd", clip=0.0)
    with pytest.raises(TrainingError) as err:
        trainer.fit()
    message = str(err.value)
    assert "try a lower --lr" in message
    if (tmp_path / "model.safetensors").exists():
        step = read_config(tmp_path)["step"]
        assert f"the best model from step {step} " in message
        model, _, config = load_lm(tmp_path)
        assert all(torch.isfinite(p).all() for p in model.parameters())
        assert all(isinstance(v, int) or torch.isfinite(torch.tensor(v)) for v in config["metrics"].values())
    else:
        assert "No checkpoint was saved" in message and "none exists" in message
    if (tmp_path / "resume.pt").exists():
        state = torch.load(tmp_path / "resume.pt", weights_only=True)
        assert f"the resume state from step {state['step']} " in message
        assert all(torch.isfinite(t).all() for t in state["model"].values())


# ---------------------------------------------------------------------- defects 12, 15: resuming a run

def test_resuming_a_finished_run_trains_no_further(tmp_path):
    _trainer(tmp_path, max_steps=6).fit()
    before = (tmp_path / "model.safetensors").read_bytes()
    again = _trainer(tmp_path, max_steps=6)
    again.resume()
    assert again.fit() == "max_steps"
    assert again.step == 6
    assert max(r["step"] for r in records(tmp_path, "train")) == 6
    assert (tmp_path / "model.safetensors").read_bytes() == before


def test_records_past_the_resumed_step_are_dropped(tmp_path):
    """A kill after metrics.jsonl got records of steps 5-6 but before the resume state of step 6 was saved: the
    resumed run writes steps 5-6 once, as an uninterrupted run would."""
    _trainer(tmp_path / "a", max_steps=8).fit()
    b = tmp_path / "b"
    _trainer(b, max_steps=4).fit()
    with open(b / "metrics.jsonl", "a") as f:                     # what the killed session had logged
        f.write(json.dumps({"kind": "train", "step": 5, "loss": 9.0}) + "\n")
        f.write(json.dumps({"kind": "train", "step": 6, "loss": 9.0}) + "\n")
        f.write('{"kind": "train", "st')                          # cut short by the kill
    resumed = _trainer(b, max_steps=8)
    resumed.resume()
    resumed.fit()
    steps = [(r["kind"], r["step"]) for r in records(b, "train") + records(b, "eval")]
    assert len(steps) == len(set(steps))
    assert [r["loss"] for r in records(b, "train")] == pytest.approx([r["loss"] for r in records(tmp_path / "a",
                                                                                                   "train")])


def test_a_resume_state_that_does_not_fit_lists_the_differences(tmp_path):
    _trainer(tmp_path, max_steps=2).fit()
    torch.manual_seed(0)
    task = char_task(HELLO * 21, "hello world\nhello\n", batch_size=4, bptt=8, eval_batch_size=1)
    bigger = Trainer(tiny_model(task, hidden=12, embed=4), task, TrainConfig(max_steps=4, device="cpu"), tmp_path,
                     quiet=True)
    with pytest.raises(TrainingError) as err:
        bigger.resume()
    message = str(err.value)
    assert "Error(s) in loading state_dict" not in message
    assert "shape mismatch" in message and "rnn.weight_hh_l0 saved (32, 8) vs model (48, 12)" in message


def test_weights_holding_nan_are_refused_naming_the_tensor(tmp_path):
    """Training never saves non-finite weights, so a NaN in model.safetensors is a damaged (or edited) file: loading
    refuses it rather than a model that predicts nan."""
    from safetensors.torch import load_file, save_file
    from rnnkit.training.checkpoint import CheckpointError, load_weights
    model = torch.nn.Linear(2, 2)
    save_run(tmp_path, model, {"task": "x"})
    path = tmp_path / "model.safetensors"
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    weights = load_file(str(path))
    weights["bias"][1] = float("nan")
    save_file(weights, str(path), metadata=metadata)
    with pytest.raises(CheckpointError, match=r"model.safetensors: the weights hold NaN or infinite values \(bias\); "
                                              r"the file is damaged"):
        load_weights(tmp_path, torch.nn.Linear(2, 2))


def test_a_configuration_read_from_the_weights_is_named_as_theirs(tmp_path):
    """config.json missing (a kill before its first rename): the configuration comes from model.safetensors'
    metadata, so a message about it names model.safetensors, not a config.json that isn't there."""
    from safetensors.torch import load_file, save_file
    from rnnkit.training.checkpoint import CONFIG_KEY, CheckpointError, locate_config
    _trainer(tmp_path, max_steps=2).fit()
    (tmp_path / "config.json").unlink()
    config, where = locate_config(tmp_path, task="lm")
    assert where == tmp_path / "model.safetensors" and config["task"] == "lm"
    path = tmp_path / "model.safetensors"
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    config["model"]["hidden_size"] = "eight"                     # a damaged configuration inside the weights
    save_file(load_file(str(path)), str(path), metadata={**metadata, CONFIG_KEY: json.dumps(config)})
    with pytest.raises(CheckpointError) as err:
        load_lm(tmp_path)
    assert str(err.value).startswith(f"{path}: ") and "hidden_size" in str(err.value)
    assert "config.json" not in str(err.value)


def test_resume_refuses_another_tasks_weights_copied_into_the_run(tmp_path):
    """QA: a classifier's model.safetensors copied into a language-model run was adopted on --resume (its loss
    became the best to beat, its weights the kept model). Refused, and the folder is unchanged."""
    run = tmp_path / "run"
    _trainer(run, max_steps=2).fit()
    other = tmp_path / "other"
    save_run(other, torch.nn.Linear(2, 2), {"task": "classify", "metrics": {"loss": 0.1}})
    (run / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(TrainingError, match=rf"{run / 'model.safetensors'}: holds a 'classify' model, not this "
                                            rf"'lm' run's; put the run's own file back, or start a new run"):
        _trainer(run, max_steps=4).resume()
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("change", [1, -1])
def test_a_tokenizer_that_disagrees_with_the_model_is_named_before_anything_runs(tmp_path, change):
    """QA: a symbol added to or removed from config.json's vocabulary gave an IndexError traceback in sample and
    eval, or text and then an error naming no file."""
    from rnnkit.training.checkpoint import CheckpointError
    _trainer(tmp_path, max_steps=2).fit()
    path = tmp_path / "config.json"
    config = json.loads(path.read_text())
    vocab = config["tokenizer"]["vocab"]
    size = len(vocab)
    config["tokenizer"]["vocab"] = vocab + ["€"] if change > 0 else vocab[:-1]
    path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=rf"{path}: the text tokenizer has {size + change:,} symbols but the "
                                              rf"model {size:,}; the file is damaged"):
        load_lm(tmp_path)


def test_the_trainer_refuses_a_resume_whose_vocabulary_differs(tmp_path):
    """The commands keep the run's vocabulary on --resume; the trainer's own check is the safety net for any caller
    that doesn't: the resume state records the vocabulary and a different one is named, not remapped."""
    _trainer(tmp_path, max_steps=2).fit()
    task = char_task(HELLO.upper() * 21, "HELLO WORLD\nHELLO\n", batch_size=4, bptt=8, eval_batch_size=1)
    other = Trainer(tiny_model(task, hidden=8, embed=4), task, TrainConfig(max_steps=4, device="cpu"), tmp_path,
                    quiet=True)
    with pytest.raises(TrainingError, match=r"resume.pt: the training data gives another vocabulary than the run "
                                            r"was trained with \(tokenizer: symbol 2 is 'D' now, 'd' then\)"):
        other.resume()
