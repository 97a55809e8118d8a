"""The captioning commands end to end on tiny data: train, caption (beam, attention plot), eval; bad inputs;
every option's --help shows its default."""
import argparse
import json

import pytest
import torch
from PIL import Image

from rnnkit.cli import caption as caption_cli
from rnnkit.cli import train_caption
from rnnkit.cli.main import main
from rnnkit.data.shapes import write_shapes_folder

TINY = ["--dataset", "shapes", "--train-size", "24", "--valid-size", "6", "--image-size", "32", "--widths", "8,16",
        "--embed-size", "8", "--hidden-size", "16", "--batch-size", "12", "--epochs", "1", "--quiet",
        "--threads", "1", "--no-fresh-scenes", "--attention", "none"]        # the shapes preset's, undone


@pytest.fixture(scope="module")
def attention_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cap") / "run"
    assert main(["train", "caption", "--out", str(out), *TINY, "--attention", "bahdanau"]) == 0
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("shapes")
    write_shapes_folder(path, 4, seed=9, image_size=32)
    return path


def test_cap_cli_train_writes_run(attention_run):
    config = json.loads((attention_run / "config.json").read_text())
    assert config["task"] == "caption" and config["model"]["attention"] == "bahdanau"
    assert {"bleu1", "bleu4", "exact", "loss"} <= set(config["metrics"])
    assert (attention_run / "model.safetensors").is_file() and (attention_run / "resume.pt").is_file()
    options = json.loads((attention_run / "options.json").read_text())
    assert options["preset"] == "shapes" and options["pool"] == 2            # --dataset shapes brings its preset
    assert options["fresh_scenes"] is False and options["embed_size"] == 8    # what was typed wins (--no-...)


def test_cap_cli_caption_and_attention_plot(attention_run, folder, tmp_path, capsys):
    images = sorted(str(p) for p in folder.glob("*.png"))[:2]
    plots = tmp_path / "plots"
    assert main(["caption", str(attention_run), *images, "--beam", "3", "--attention-plot", str(plots)]) == 0
    lines = capsys.readouterr().out.strip().split("\n")
    assert [line.split("\t")[0] for line in lines] == images
    for image in images:
        png = plots / (image.rsplit("/", 1)[1][:-4] + ".png")
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size[0] > 100


def test_cap_cli_eval_prints_bleu(attention_run, folder, capsys):
    assert main(["eval", str(attention_run), "--images", str(folder), "--captions",
                 str(folder / "captions.txt"), "--beam", "2"]) == 0
    out = capsys.readouterr().out
    assert "4 images, beam 2: BLEU-1" in out and "BLEU-4" in out and "exact match" in out


def test_cap_cli_train_from_folder_skips_bad(tmp_path, folder, capsys):
    images = tmp_path / "imgs"
    captions = write_shapes_folder(images, 12, seed=4, image_size=32)
    broken = sorted(images.glob("*.png"))[0]
    broken.write_bytes(b"not a png")
    base = ["train", "caption", "--images", str(images), "--captions", str(captions), "--image-size", "32",
            "--widths", "8", "--hidden-size", "8", "--embed-size", "8", "--max-steps", "1", "--quiet"]
    assert main([*base, "--out", str(tmp_path / "r1")]) == 2
    assert f"{broken}: cannot read the image" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "r2"), "--skip-bad", "--cell", "gru"]) == 0
    assert f"skipped 1 image(s): {broken.name}: cannot read the image" in capsys.readouterr().err


def test_cap_cli_bad_inputs(attention_run, folder, tmp_path, capsys):
    assert main(["caption", str(attention_run), str(tmp_path / "nope.jpg")]) == 2
    assert f"{tmp_path / 'nope.jpg'}: image not found" in capsys.readouterr().err
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    assert main(["caption", str(attention_run), str(tmp_path / "bad.jpg")]) == 2
    assert f"{tmp_path / 'bad.jpg'}: cannot read the image" in capsys.readouterr().err
    assert main(["train", "caption", "--out", str(tmp_path / "r"), "--images", str(folder)]) == 2
    assert "no training data: give --images DIR and --captions FILE" in capsys.readouterr().err
    assert main(["train", "caption", "--out", str(tmp_path / "r"), *TINY, "--cache-features"]) == 2
    assert "--cache-features needs --freeze-encoder" in capsys.readouterr().err
    assert main(["eval", str(attention_run), "--images", str(folder)]) == 2
    assert "give --images DIR --captions FILE" in capsys.readouterr().err


def test_cap_cli_plot_needs_attention(tmp_path, folder, capsys):
    out = tmp_path / "plain"
    assert main(["train", "caption", "--out", str(out), *TINY, "--max-steps", "1", "--freeze-encoder",
                 "--cache-features"]) == 0
    image = str(sorted(folder.glob("*.png"))[0])
    assert main(["caption", str(out), image, "--attention-plot", str(tmp_path / "p")]) == 2
    assert "was trained without attention (--attention none): nothing to plot" in capsys.readouterr().err


def _subparser(module, *path):
    parser = argparse.ArgumentParser()
    module.add_parser(parser.add_subparsers())
    return parser._subparsers._group_actions[0].choices[path[0]]


@pytest.mark.parametrize("module, name, options", [(train_caption, "caption", train_caption.ALL),
                                                   (caption_cli, "caption", caption_cli.OPTIONS)])
def test_cap_cli_help_shows_every_default(module, name, options, capsys):
    parser = _subparser(module, name)
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for o in options:
        assert o.flag in text
        assert f"(default: {o.default})" in text, o.flag
    missing = [a.option_strings[0] for a in parser._actions
               if a.option_strings and a.option_strings[0] != "-h" and not a.required
               and "(default:" not in (a.help or "")]
    assert missing == []


def test_cap_cli_batch_size_one_evaluates(tmp_path):
    """--batch-size 1 is in range: the batch-norm recalibration before each evaluation draws batches of two
    (it drew none and raised at the first evaluation, after the steps were trained)."""
    out = tmp_path / "bs1"
    assert main(["train", "caption", "--out", str(out), *TINY, "--max-steps", "2", "--eval-every", "2",
                 "--batch-size", "1"]) == 0
    assert (out / "model.safetensors").is_file()


def test_cap_cli_plots_of_images_that_share_a_name_are_all_kept(attention_run, folder, tmp_path, capsys):
    image = sorted(folder.glob("*.png"))[0]
    other = tmp_path / "elsewhere" / image.name
    other.parent.mkdir()
    other.write_bytes(image.read_bytes())
    plots = tmp_path / "plots"
    assert main(["caption", str(attention_run), str(image), str(other), "--attention-plot", str(plots)]) == 0
    assert sorted(p.name for p in plots.iterdir()) == [f"001_{image.stem}.png", f"002_{image.stem}.png"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cap_cli_cuda_without_a_gpu_is_one_line(attention_run, folder, capsys):
    image = str(sorted(folder.glob("*.png"))[0])
    assert main(["caption", str(attention_run), image, "--device", "cuda"]) == 2
    assert capsys.readouterr().err.strip() == ("rnnkit: error: --device cuda was asked for, but this PyTorch sees "
                                               "no CUDA device")


def test_cap_cli_eval_names_missing_images_without_suggesting_an_option_it_lacks(attention_run, folder, tmp_path,
                                                                                capsys):
    captions = tmp_path / "captions.txt"
    captions.write_text((folder / "captions.txt").read_text() + "nothere.png#0\ta red square\n")
    assert main(["eval", str(attention_run), "--images", str(folder), "--captions", str(captions)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"1 image(s) named in {captions} are not in {folder}: nothere.png") and "--skip-bad" not in err
