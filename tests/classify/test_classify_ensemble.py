"""Ensembles (`--ensemble K`), checkpoint averaging (`--average-checkpoints N`) and the classifier's regularisers."""
import json

import pytest
import torch

from rnnkit.cli.main import main
from rnnkit.data import read_labelled
from rnnkit.models.classifier import Classifier, ClassifierConfig
from rnnkit.models.ensemble import EnsembleClassifier
from rnnkit.tasks.checkpoint_average import CheckpointAveragingTrainer, average_state
from rnnkit.tasks.classification import build_model, load_classifier
from rnnkit.tasks.ensemble import member_budget
from rnnkit.training import TrainConfig, load_weights

from classify_texts import NEG, POS, write_tsv

TINY = ["--preset", "tiny", "--engine", "python", "--quiet", "--threads", "1", "--seed", "3"]


def batch(vocab=20, n=5, t=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, t + 1, (n,), generator=g)
    tokens = torch.randint(1, vocab, (n, t), generator=g)
    tokens[torch.arange(t).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    return tokens, lengths


# ------------------------------------------------------------------------------------------------ the model


@pytest.mark.parametrize("pooling", ["max", "attention"])
def test_ensemble_probabilities_are_the_mean_of_the_members(pooling):
    torch.manual_seed(0)
    cfg = ClassifierConfig(vocab_size=20, num_classes=3, embed_size=8, hidden_size=6, pooling=pooling,
                           engine="autograd")
    members = [Classifier(cfg).eval() for _ in range(3)]
    ensemble = EnsembleClassifier(members).eval()
    tokens, lengths = batch()
    expected = torch.stack([torch.softmax(m(tokens, lengths), -1) for m in members]).mean(0)
    logits, weights = ensemble.explain(tokens, lengths)
    torch.testing.assert_close(torch.softmax(logits, -1), expected)
    torch.testing.assert_close(logits.exp().sum(-1), torch.ones(5))        # log of a distribution already
    torch.testing.assert_close(ensemble.member_probabilities(tokens, lengths).mean(0), expected)
    if pooling == "attention":
        mean_w = torch.stack([m.explain(tokens, lengths)[1] for m in members]).mean(0)
        torch.testing.assert_close(weights, mean_w)
    else:
        assert weights is None


def test_ensemble_of_one_is_the_member_and_mismatched_members_are_refused():
    torch.manual_seed(1)
    cfg = ClassifierConfig(vocab_size=20, num_classes=2, embed_size=8, hidden_size=6, engine="autograd")
    m = Classifier(cfg).eval()
    tokens, lengths = batch()
    torch.testing.assert_close(torch.softmax(EnsembleClassifier([m]).eval()(tokens, lengths), -1),
                               torch.softmax(m(tokens, lengths), -1))
    other = Classifier(ClassifierConfig(vocab_size=21, num_classes=2, embed_size=8, hidden_size=6))
    with pytest.raises(ValueError, match="share the vocabulary"):
        EnsembleClassifier([m, other])
    with pytest.raises(ValueError, match="at least one member"):
        EnsembleClassifier([])


def test_build_model_reads_the_ensemble_size():
    cfg = ClassifierConfig(vocab_size=20, num_classes=2, embed_size=8, hidden_size=6).to_dict()
    assert isinstance(build_model(cfg), Classifier)
    assert len(build_model({**cfg, "ensemble": 3})) == 3
    one = build_model({**cfg, "ensemble": 1})          # an ensemble stopped after its first member (QA: unloadable)
    assert isinstance(one, EnsembleClassifier) and len(one) == 1
    with pytest.raises(ValueError, match="member count"):
        build_model({**cfg, "ensemble": 0})


def test_member_budget_shares_what_is_left():
    assert member_budget(None, 100.0, 3) is None
    assert member_budget(20.0, 0.0, 4) == pytest.approx(5.0)
    assert member_budget(20.0, 6 * 60.0, 2) == pytest.approx(7.0)        # an early-stopped member left time
    assert member_budget(1.0, 120.0, 2) > 0                              # over budget: still starts


# ------------------------------------------------------------------------------------------------ regularisers


def test_word_dropout_and_weight_drop_train_only():
    torch.manual_seed(2)
    cfg = ClassifierConfig(vocab_size=20, num_classes=2, embed_size=8, hidden_size=6, word_dropout=0.5,
                           weight_drop=0.3, engine="autograd")
    m = Classifier(cfg)
    assert m.rnn.options.weight_drop == 0.3
    plain = Classifier(ClassifierConfig(vocab_size=20, num_classes=2, embed_size=8, hidden_size=6,
                                        engine="autograd"))
    plain.load_state_dict(m.state_dict())
    tokens, lengths = batch()
    torch.testing.assert_close(m.eval()(tokens, lengths), plain.eval()(tokens, lengths))   # off in evaluation
    m.train()
    torch.manual_seed(0)
    emb = m.encode(tokens, lengths)[0]
    assert not torch.allclose(emb, plain.train().encode(tokens, lengths)[0])
    assert ClassifierConfig.from_dict(cfg.to_dict()) == cfg


# ------------------------------------------------------------------------------------------------ averaging


def test_average_state_is_the_elementwise_mean():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(5)}
    avg = average_state([a, b])
    torch.testing.assert_close(avg["w"], torch.tensor([2.0, 4.0]))
    assert int(avg["n"]) == 5                                             # integers: the last one's


class CountingTask:
    """A task whose every evaluation is better than the last (so each one saves the model)."""
    name, metric, higher_is_better = "classify", "accuracy", True

    def __init__(self):
        self.calls = 0

    def evaluate(self, model):
        self.calls += 1
        return {"accuracy": float(self.calls), "loss": 1.0}

    def run_config(self):
        return {"task": "classify", "model": {}}

    def state_dict(self):
        return {}


def test_averaging_trainer_saves_the_window_mean_and_trains_on(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    trainer = CheckpointAveragingTrainer(model, CountingTask(), TrainConfig(device="cpu"), tmp_path, quiet=True,
                                         window=2)
    states = []
    for k in range(3):
        with torch.no_grad():
            model.weight.add_(float(k + 1))
        states.append({n: t.clone() for n, t in model.state_dict().items()})
        trainer.evaluate()
        torch.testing.assert_close(model.weight, states[-1]["weight"])    # training goes on un-averaged
    saved = torch.nn.Linear(3, 2)
    load_weights(tmp_path, saved)
    torch.testing.assert_close(saved.weight, (states[1]["weight"] + states[2]["weight"]) / 2)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["averaged"] for r in records] == [1, 2, 2]
    assert all("raw_accuracy" in r for r in records)


# ------------------------------------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    rows = [(t, "pos") for t in POS] + [(t, "neg") for t in NEG]
    return {"train": write_tsv(d / "train.tsv", rows * 2),
            "valid": write_tsv(d / "valid.tsv", [("good film", "pos"), ("bad film", "neg"), ("so good", "pos")])}


def train(files, out, *extra):
    return main(["train", "classify", "--train", str(files["train"]), "--valid", str(files["valid"]),
                 "--out", str(out), *TINY, "--epochs", "3", "--lr", "0.02", *extra])


@pytest.fixture(scope="module")
def ensemble_run(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "ens"
    assert train(files, out, "--ensemble", "2", "--average-checkpoints", "2", "--eval-every", "2") == 0
    return out


def test_ensemble_run_folder_and_predictions(ensemble_run, files):
    config = json.loads((ensemble_run / "config.json").read_text())
    assert config["model"]["ensemble"] == 2 and [m["seed"] for m in config["members"]] == [3, 4]
    assert json.loads((ensemble_run / "ensemble.json").read_text())["size"] == 2
    evals = [json.loads(line) for line in (ensemble_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["members"] for r in evals] == [1, 2]
    member_evals = [json.loads(line) for line in (ensemble_run / "members/0/metrics.jsonl").read_text().splitlines()
                    if '"eval"' in line]
    assert member_evals and all("raw_accuracy" in r for r in member_evals)      # members average checkpoints
    clf = load_classifier(ensemble_run)
    assert isinstance(clf.model, EnsembleClassifier) and len(clf.model) == 2
    texts = read_labelled(files["train"]).texts
    probs, _ = clf.predict(texts)
    members = [load_classifier(ensemble_run / "members" / str(i)).predict(texts)[0] for i in range(2)]
    torch.testing.assert_close(probs, (members[0] + members[1]) / 2)
    valid = read_labelled(files["valid"])
    predicted = clf.predict(valid.texts)[0].argmax(1)
    hits = sum(clf.labels.names[int(i)] == y for i, y in zip(predicted, valid.labels))
    assert evals[-1]["accuracy"] == pytest.approx(hits / len(valid))         # the saved ensemble's score


def test_ensemble_eval_and_predict_commands(ensemble_run, files, capsys):
    assert main(["eval", str(ensemble_run), "--data", str(files["valid"])]) == 0
    out = capsys.readouterr().out
    clf = load_classifier(ensemble_run)
    data = read_labelled(files["valid"])
    probs, _ = clf.predict(data.texts)
    accuracy = sum(clf.labels.names[int(i)] == y for i, y in zip(probs.argmax(1), data.labels)) / len(data)
    assert f"3 examples, accuracy {accuracy:.4f}" in out
    assert main(["predict", str(ensemble_run), "so good"]) == 0
    label, p_neg, p_pos = capsys.readouterr().out.strip().split("\t")
    assert float(p_pos[7:]) == pytest.approx(float(clf.predict(["so good"])[0][0, 1]), abs=1e-4)


def test_member_is_the_single_run_of_its_seed(files, tmp_path):
    assert train(files, tmp_path / "ens", "--ensemble", "2") == 0
    assert train(files, tmp_path / "one", "--seed", "4") == 0
    second = load_classifier(tmp_path / "ens" / "members" / "1").model.state_dict()
    alone = load_classifier(tmp_path / "one").model.state_dict()
    assert second.keys() == alone.keys()
    for k in alone:
        torch.testing.assert_close(second[k], alone[k])


def test_resuming_a_finished_ensemble_trains_nothing(files, tmp_path, capsys):
    out = tmp_path / "ens"
    assert train(files, out, "--ensemble", "2") == 0
    before = (out / "model.safetensors").read_bytes()
    assert main(["train", "classify", "--out", str(out), "--resume", "--quiet"]) == 0
    assert (out / "model.safetensors").read_bytes() == before
    assert len(json.loads((out / "ensemble.json").read_text())["done"]) == 2


@pytest.mark.parametrize("flag, value", [("--ensemble", "0"), ("--ensemble", "65"), ("--average-checkpoints", "0"),
                                         ("--word-dropout", "1"), ("--weight-drop", "-0.1"), ("--zoneout", "1.5")])
def test_out_of_range_options_are_refused(files, tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as e:
        train(files, tmp_path / "x", flag, value)
    assert e.value.code == 2
    assert flag in capsys.readouterr().err


def test_torch_kernel_with_a_layer_regulariser_is_a_clear_error(files, tmp_path, capsys):
    code = main(["train", "classify", "--train", str(files["train"]), "--valid", str(files["valid"]),
                 "--out", str(tmp_path / "x"), "--preset", "tiny", "--engine", "torch", "--zoneout", "0.3",
                 "--quiet"])
    assert code == 2
    assert "--engine torch (torch.nn's kernel; the sst2 preset's) has no --zoneout" in capsys.readouterr().err
    assert not (tmp_path / "x" / "model.safetensors").exists()
