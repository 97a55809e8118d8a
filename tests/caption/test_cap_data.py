"""Captioning data: both caption formats against hand-written examples, every bad input and its message, shapes."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rnnkit.data import DataError
from rnnkit.data.images import (caption_words, load_caption_set, load_image, load_images, normalize,
                                read_coco_captions, read_flickr8k_captions, read_image_list)
from rnnkit.data.shapes import COLOURS, make_shapes, write_shapes_folder

SHARED = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "flickr8k_mini").resolve()

FLICKR = ("1000268201_693b08cb0e.jpg#0\tA child in a pink dress is climbing up a set of stairs .\n"
          "1000268201_693b08cb0e.jpg#1\tA girl going into a wooden building .\n"
          "1001773457_577c3a7d70.jpg#0\tA black dog and a spotted dog are fighting\n"
          "\n"
          "1001773457_577c3a7d70.jpg#1\tTwo dogs on pavement moving toward each other .\n")

COCO = {"images": [{"id": 9, "file_name": "b.jpg"}, {"id": 3, "file_name": "a.jpg"}],
        "annotations": [{"id": 1, "image_id": 3, "caption": "A man riding a horse."},
                        {"id": 2, "image_id": 9, "caption": " Two cats. "},
                        {"id": 5, "image_id": 3, "caption": "A rider on a brown horse"}]}


def _image(path: Path, colour=(200, 10, 10), size=(20, 12)) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("1000268201_693b08cb0e.jpg", "1001773457_577c3a7d70.jpg"):
        _image(images / name)
    (tmp_path / "captions.txt").write_text(FLICKR, encoding="utf-8")
    return tmp_path


def test_cap_flickr8k_format_parsed(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(FLICKR, encoding="utf-8")
    assert read_flickr8k_captions(path) == {
        "1000268201_693b08cb0e.jpg": ["A child in a pink dress is climbing up a set of stairs .",
                                      "A girl going into a wooden building ."],
        "1001773457_577c3a7d70.jpg": ["A black dog and a spotted dog are fighting",
                                      "Two dogs on pavement moving toward each other ."]}


def test_cap_coco_format_parsed(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(COCO), encoding="utf-8")
    assert read_coco_captions(path) == {"a.jpg": ["A man riding a horse.", "A rider on a brown horse"],
                                        "b.jpg": ["Two cats."]}


def test_cap_caption_words():
    assert caption_words("A dog's T-shirt, wet .") == ["a", "dog's", "t-shirt", "wet"]


def test_cap_split_list_and_set(folder):
    (folder / "train.txt").write_text("1001773457_577c3a7d70.jpg\n\n", encoding="utf-8")
    assert read_image_list(folder / "train.txt") == ["1001773457_577c3a7d70.jpg"]
    items = load_caption_set(folder / "images", folder / "captions.txt", image_list=folder / "train.txt")
    assert [i.name for i in items] == ["1001773457_577c3a7d70.jpg"]
    assert items[0].path == folder / "images" / "1001773457_577c3a7d70.jpg"
    assert len(items[0].captions) == 2


def test_cap_coco_set_auto_detected(tmp_path):
    _image(tmp_path / "a.jpg")
    _image(tmp_path / "b.jpg")
    (tmp_path / "c.json").write_text(json.dumps(COCO), encoding="utf-8")
    items = load_caption_set(tmp_path, tmp_path / "c.json")
    assert sorted(i.name for i in items) == ["a.jpg", "b.jpg"]


def test_cap_missing_image_named(folder):
    (folder / "images" / "1001773457_577c3a7d70.jpg").unlink()
    with pytest.raises(DataError, match=r"1 image\(s\) named in .*captions.txt are not in .*images: "
                                        r"1001773457_577c3a7d70.jpg \(--skip-bad drops them\)"):
        load_caption_set(folder / "images", folder / "captions.txt")
    skipped = []
    items = load_caption_set(folder / "images", folder / "captions.txt", skip_bad=True, skipped=skipped)
    assert [i.name for i in items] == ["1000268201_693b08cb0e.jpg"]
    assert skipped == [f"1001773457_577c3a7d70.jpg: not in {folder / 'images'}"]


def test_cap_corrupt_image_named(folder):
    bad = folder / "images" / "1001773457_577c3a7d70.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    items = load_caption_set(folder / "images", folder / "captions.txt")
    with pytest.raises(DataError, match=r"1001773457_577c3a7d70.jpg: cannot read the image"):
        load_images(items, 16)
    skipped = []
    pixels, kept = load_images(items, 16, skip_bad=True, skipped=skipped)
    assert pixels.shape == (1, 3, 16, 16) and [k.name for k in kept] == ["1000268201_693b08cb0e.jpg"]
    assert skipped[0].startswith("1001773457_577c3a7d70.jpg: cannot read the image")


def test_cap_truncated_image_named(folder):
    path = folder / "images" / "1000268201_693b08cb0e.jpg"
    Image.fromarray(np.random.RandomState(0).randint(0, 255, (64, 64, 3), dtype=np.uint8)).save(path, quality=90)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match=r"1000268201_693b08cb0e.jpg: cannot read the image"):
        load_image(path, 16)


def test_cap_captions_for_unknown_images(folder, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    _image(other / "x.jpg")
    with pytest.raises(DataError, match=r"captions.txt: none of the 2 images named in .*captions.txt is in .*other "
                                        r"\(first: 1000268201_693b08cb0e.jpg\); is this the right captions file"):
        load_caption_set(other, folder / "captions.txt", skip_bad=True)


def test_cap_listed_image_without_caption(folder):
    (folder / "list.txt").write_text("1001773457_577c3a7d70.jpg\nnope.jpg\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"list.txt: 1 listed image\(s\) have no caption in .*captions.txt: nope.jpg"):
        load_caption_set(folder / "images", folder / "captions.txt", image_list=folder / "list.txt")


@pytest.mark.parametrize("text, message", [
    ("a.jpg\tno number\n", r"c.txt: line 1: expected 'image.jpg#n<TAB>caption'"),
    ("a.jpg#0 no tab\n", r"c.txt: line 1: expected 'image.jpg#n<TAB>caption'"),
    ("a.jpg#0\tx\na.jpg#0\ty\n", r"c.txt: line 2: caption a.jpg#0 appears twice"),
    ("a.jpg#0\t  \n", r"c.txt: line 1: empty caption for a.jpg"),
    ("\n", r"c.txt: no captions in the file"),
])
def test_cap_bad_flickr8k_lines(tmp_path, text, message):
    (tmp_path / "c.txt").write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_flickr8k_captions(tmp_path / "c.txt")


@pytest.mark.parametrize("data, message", [
    ("{", r"c.json: not valid JSON"),
    ({"images": []}, r"c.json: expected a COCO captions object with lists 'images' and 'annotations'"),
    ({"images": [{"id": 1}], "annotations": []}, r"c.json: images\[0\]: needs 'id' and 'file_name'"),
    ({"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 2, "caption": "x"}]},
     r"c.json: annotations\[0\]: image_id 2 is not in 'images'"),
])
def test_cap_bad_coco(tmp_path, data, message):
    (tmp_path / "c.json").write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_coco_captions(tmp_path / "c.json")


def test_cap_missing_files_named(tmp_path):
    with pytest.raises(DataError, match=r"nope.txt: no such captions file"):
        read_flickr8k_captions(tmp_path / "nope.txt")
    with pytest.raises(DataError, match=r"nodir: no such image folder"):
        load_caption_set(tmp_path / "nodir", tmp_path / "nope.txt")
    with pytest.raises(DataError, match=r"gone.png: image not found"):
        load_image(tmp_path / "gone.png", 8)
    (tmp_path / "imgs").mkdir()
    with pytest.raises(DataError, match=r"imgs: a folder, not an image file"):     # (QA: "image not found")
        load_image(tmp_path / "imgs", 8)


def test_cap_image_resized_and_normalised(tmp_path):
    pixels = load_image(_image(tmp_path / "r.png", (255, 0, 0), (30, 10)), 8)
    assert pixels.dtype == torch.uint8 and pixels.shape == (3, 8, 8)
    assert pixels[0].eq(255).all() and pixels[1:].eq(0).all()
    x = normalize(pixels.unsqueeze(0))
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([(1 - 0.485) / 0.229, -0.456 / 0.224, -0.406 / 0.225]))


def test_cap_shapes_deterministic_and_described():
    a, b = make_shapes(40, seed=3, image_size=48), make_shapes(40, seed=3, image_size=48)
    assert torch.equal(a.images, b.images) and a.captions == b.captions
    assert a.captions != make_shapes(40, seed=4, image_size=48).captions
    assert a.images.shape == (40, 3, 48, 48) and a.images.dtype == torch.uint8
    counts = set()
    for caption, objects in zip(a.captions, a.objects):
        counts.add(len(objects))
        assert [o[3] for o in objects] == sorted(o[3] for o in objects)           # left to right
        parts = caption.split(" left of ")
        assert len(parts) == len(objects)
        for part, (size, colour, shape, _) in zip(parts, objects):
            assert part.startswith(f"a {size} {colour} {shape}")
        if len(objects) == 1:
            assert caption.endswith(("on the left", "in the middle", "on the right"))
    assert counts == {1, 2, 3}


def test_cap_shapes_pixels_match_caption():
    scenes = make_shapes(30, seed=1, image_size=60)
    for img, objects in zip(scenes.images, scenes.objects):
        for size, colour, shape, column in objects:
            band = img[:, :, column * 20:(column + 1) * 20].reshape(3, -1).T
            assert (band == torch.tensor(COLOURS[colour], dtype=torch.uint8)).all(1).any(), (colour, column)


def test_cap_shapes_folder_round_trip(tmp_path):
    captions = write_shapes_folder(tmp_path, 3, seed=2, image_size=32)
    items = load_caption_set(tmp_path, captions)
    pixels, _ = load_images(items, 32)
    scenes = make_shapes(3, seed=2, image_size=32)
    assert torch.equal(pixels, scenes.images)
    assert [i.captions[0] for i in items] == scenes.captions


def test_cap_flickr8k_mini_reads():
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present (real-data test)")
    items = load_caption_set(SHARED / "images", SHARED / "val_captions.txt", image_list=SHARED / "val_images.txt")
    assert len(items) == 50 and all(len(i.captions) == 5 for i in items)
    pixels, kept = load_images(items[:2], 32)
    assert pixels.shape == (2, 3, 32, 32)
