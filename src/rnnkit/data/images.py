"""Captioned images: a folder of pictures plus a captions file, in Flickr8k's or COCO's format.

Flickr8k (``Flickr8k.token.txt``)::

    1000268201_693b08cb0e.jpg#0<TAB>A child in a pink dress is climbing up a set of stairs .
    1000268201_693b08cb0e.jpg#1<TAB>A girl going into a wooden building .

with optional split lists (``Flickr_8k.trainImages.txt``: one image name per line) choosing the images.

COCO (``captions_train2014.json``)::

    {"images": [{"id": 9, "file_name": "a.jpg"}, ...],
     "annotations": [{"image_id": 9, "caption": "A man ..."}, ...]}

Images are read with Pillow, converted to RGB and resized to a square (aspect not kept, as the usual
224×224 pipelines do); they are kept as uint8 and normalised per batch with ImageNet's mean and standard
deviation (:func:`normalize`). A missing or unreadable image is a :class:`DataError` naming it; with
``skip_bad=True`` such rows are dropped and listed instead.

Captions are compared lower-cased, as words without punctuation (:func:`caption_words`), for training and BLEU.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image, UnidentifiedImageError

from .errors import DataError

__all__ = ["CaptionedImage", "IMAGENET_MEAN", "IMAGENET_STD", "FORMATS", "caption_words", "normalize_caption",
           "read_flickr8k_captions", "read_coco_captions", "read_captions", "read_image_list", "load_caption_set",
           "load_image", "load_images", "normalize", "detect_format"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FORMATS = ("flickr8k", "coco")
_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
_SHOWN = 5


@dataclass
class CaptionedImage:
    """One picture and all its reference captions (as written in the file)."""

    name: str
    path: Path
    captions: list[str]


def caption_words(text: str) -> list[str]:
    """Lower-case words, punctuation dropped: ``"A dog's ball ."`` → ``["a", "dog's", "ball"]``."""
    return _WORD.findall(text.lower())


def normalize_caption(text: str) -> str:
    return " ".join(caption_words(text))


# ---------------------------------------------------------------------------------------------- caption files

def _read(path: str | Path, what: str = "captions file") -> str:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such {what}" if not path.exists() else "not a file", path)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 text (byte {e.start})", path) from None


def read_flickr8k_captions(path: str | Path) -> dict[str, list[str]]:
    """``{image name: [caption #0, #1, ...]}`` from Flickr8k's ``name#n<TAB>caption`` lines, in file order."""
    out: dict[str, dict[int, str]] = {}
    for number, line in enumerate(_read(path).splitlines(), 1):
        if not line.strip():
            continue
        key, tab, caption = line.partition("\t")
        name, hash_, index = key.strip().rpartition("#")
        if not tab or not hash_ or not name or not index.isdigit():
            raise DataError(f"line {number}: expected 'image.jpg#n<TAB>caption' (Flickr8k format), got "
                            f"{line[:60]!r}", path)
        if not caption.strip():
            raise DataError(f"line {number}: empty caption for {name}", path)
        captions = out.setdefault(name, {})
        if int(index) in captions:
            raise DataError(f"line {number}: caption {name}#{index} appears twice", path)
        captions[int(index)] = caption.strip()
    if not out:
        raise DataError("no captions in the file", path)
    return {name: [c[k] for k in sorted(c)] for name, c in out.items()}


def read_coco_captions(path: str | Path) -> dict[str, list[str]]:
    """``{file_name: [captions]}`` from a COCO-style JSON file (``images`` + ``annotations``)."""
    try:
        data = json.loads(_read(path))
    except json.JSONDecodeError as e:
        raise DataError(f"not valid JSON ({e})", path) from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise DataError("expected a COCO captions object with lists 'images' and 'annotations'", path)
    names: dict = {}
    for k, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image or not isinstance(image.get("file_name"), str):
            raise DataError(f"images[{k}]: needs 'id' and 'file_name'", path)
        names[image["id"]] = image["file_name"]
    out: dict[str, list[str]] = {}
    for k, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or "image_id" not in ann or not isinstance(ann.get("caption"), str):
            raise DataError(f"annotations[{k}]: needs 'image_id' and 'caption'", path)
        if ann["image_id"] not in names:
            raise DataError(f"annotations[{k}]: image_id {ann['image_id']!r} is not in 'images'", path)
        out.setdefault(names[ann["image_id"]], []).append(ann["caption"].strip())
    if not out:
        raise DataError("no annotations in the file", path)
    return out


def detect_format(path: str | Path) -> str:
    """``coco`` for a ``.json`` file, else ``flickr8k``."""
    return "coco" if Path(path).suffix.lower() == ".json" else "flickr8k"


def read_captions(path: str | Path, format: str | None = None) -> dict[str, list[str]]:
    format = format or detect_format(path)
    if format not in FORMATS:
        raise DataError(f"unknown captions format {format!r}; expected one of {FORMATS}", path)
    return read_coco_captions(path) if format == "coco" else read_flickr8k_captions(path)


def read_image_list(path: str | Path) -> list[str]:
    """A split list: one image name per line (Flickr8k's ``Flickr_8k.trainImages.txt``)."""
    names = [line.strip() for line in _read(path, "image list").splitlines() if line.strip()]
    if not names:
        raise DataError("the image list is empty", path)
    return names


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def load_caption_set(images_dir: str | Path, captions_file: str | Path, format: str | None = None,
                     image_list: str | Path | Sequence[str] | None = None, skip_bad: bool | None = False,
                     skipped: list[str] | None = None) -> list[CaptionedImage]:
    """The images of ``captions_file`` (restricted to ``image_list`` when given) that are in ``images_dir``.

    Errors (each names the file and the images): a folder that doesn't exist; a captions file none of whose
    images is in the folder (the wrong folder or file); some images missing (unless ``skip_bad``, which drops
    them and appends ``"name: reason"`` to ``skipped``; None: the caller has no --skip-bad to suggest); a listed
    image without captions.
    Images are not opened here; :func:`load_images` reports unreadable ones.
    """
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise DataError("no such image folder", images_dir)
    captions = read_captions(captions_file, format)
    if image_list is not None:
        names = read_image_list(image_list) if isinstance(image_list, (str, Path)) else list(image_list)
        source = image_list if isinstance(image_list, (str, Path)) else captions_file
        uncaptioned = [n for n in names if n not in captions]
        if uncaptioned:
            if not skip_bad or len(uncaptioned) == len(names):
                raise DataError(f"{len(uncaptioned)} listed image(s) have no caption in {captions_file}: "
                                f"{_listing(uncaptioned)}", source)
            if skipped is not None:
                skipped.extend(f"{n}: no caption in {captions_file}" for n in uncaptioned)
            names = [n for n in names if n in captions]
    else:
        names = list(captions)
    missing = [n for n in names if not (images_dir / n).is_file()]
    if len(missing) == len(names):
        raise DataError(f"none of the {len(names)} images named in {captions_file} is in {images_dir} "
                        f"(first: {names[0]}); is this the right captions file and image folder?", captions_file)
    if missing:
        if not skip_bad:
            raise DataError(f"{len(missing)} image(s) named in {captions_file} are not in {images_dir}: "
                            f"{_listing(missing)}" + ("" if skip_bad is None else " (--skip-bad drops them)"),
                            images_dir / missing[0])
        if skipped is not None:
            skipped.extend(f"{n}: not in {images_dir}" for n in missing)
    missing_set = set(missing)
    return [CaptionedImage(n, images_dir / n, captions[n]) for n in names if n not in missing_set]


# ---------------------------------------------------------------------------------------------- pixels

def load_image(path: str | Path, size: int) -> torch.Tensor:
    """The picture at ``path`` as uint8 (3, size, size), RGB; an unreadable file is a DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError("a folder, not an image file" if path.is_dir() else "image not found", path)
    try:
        with Image.open(path) as img:
            img = img.convert("RGB").resize((size, size), Image.BILINEAR)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot read the image ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
                        path) from None
    return torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(size, size, 3).permute(2, 0, 1)


def load_images(items: Sequence[CaptionedImage], size: int, skip_bad: bool = False,
                skipped: list[str] | None = None) -> tuple[torch.Tensor, list[CaptionedImage]]:
    """``(uint8 (N, 3, size, size), the items kept)``; unreadable images raise, or are dropped with ``skip_bad``."""
    pixels, kept = [], []
    for item in items:
        try:
            pixels.append(load_image(item.path, size))
        except DataError as e:
            if not skip_bad:
                raise
            if skipped is not None:
                skipped.append(f"{item.name}: {e.problem}")
            continue
        kept.append(item)
    if not kept:
        raise DataError("no readable images", items[0].path.parent if items else None)
    return torch.stack(pixels), kept


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) → float32 with ImageNet's per-channel mean and standard deviation."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std
