"""Synthetic captioned scenes: one to three coloured shapes on a dark background, with a caption that says what
they are and where. Deterministic for a seed, no network, a few seconds for tens of thousands of images.

The picture is cut into three columns; each shape sits in its own column (random height, a little horizontal
jitter), so "left of" is always well defined::

    +--------+--------+--------+
    |   ●    |        |        |      "a small red circle left of a large blue square"
    |        |        |  ■■■   |
    |        |        |  ■■■   |
    +--------+--------+--------+

Captions name the shapes from left to right, each as ``a <size> <colour> <shape>``, joined by ``left of``;
a lone shape also gets its column: ``a large green triangle in the middle``. The caption is a function of the
image, so a perfect model gets every caption exactly right.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

__all__ = ["SHAPES", "COLOURS", "SIZES", "ShapeScenes", "make_shapes", "describe", "write_shapes_folder"]

SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (50, 90, 240), "yellow": (235, 215, 40),
           "white": (240, 240, 240)}
SIZES = {"small": 0.16, "large": 0.28}      # shape width as a fraction of the image side
COLUMNS = ("on the left", "in the middle", "on the right")
BACKGROUND = (20, 20, 28)


@dataclass
class ShapeScenes:
    """``images`` uint8 (N, 3, S, S); ``captions[i]`` the one caption of image ``i``; ``objects[i]`` its shapes
    as ``(size, colour, shape, column)`` from left to right."""

    images: torch.Tensor
    captions: list[str]
    objects: list[list[tuple[str, str, str, int]]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.captions)


def describe(objects: list[tuple[str, str, str, int]]) -> str:
    """The caption of a scene whose ``objects`` are sorted left to right."""
    words = " left of ".join(f"a {size} {colour} {shape}" for size, colour, shape, _ in objects)
    if len(objects) == 1:
        words += " " + COLUMNS[objects[0][3]]
    return words


def _draw(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, side: float, colour) -> None:
    r = side / 2
    box = (round(cx - r), round(cy - r), round(cx + r), round(cy + r))
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)


def make_shapes(n: int, seed: int = 0, image_size: int = 64, max_objects: int = 3) -> ShapeScenes:
    """``n`` scenes of 1..``max_objects`` shapes, ``image_size`` pixels square, drawn from ``seed``."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not 1 <= max_objects <= 3:
        raise ValueError(f"max_objects must be 1, 2 or 3, got {max_objects}")
    if image_size < 24:
        raise ValueError(f"image_size must be at least 24 pixels, got {image_size}")
    rng = np.random.RandomState(seed)
    s = image_size
    column = s / 3
    images = np.empty((n, s, s, 3), dtype=np.uint8)
    captions, objects = [], []
    colour_names, size_names = list(COLOURS), list(SIZES)
    for i in range(n):
        count = rng.randint(1, max_objects + 1)
        columns = sorted(rng.choice(3, size=count, replace=False).tolist())
        img = Image.new("RGB", (s, s), BACKGROUND)
        draw = ImageDraw.Draw(img)
        scene = []
        for col in columns:
            size, colour, shape = (size_names[rng.randint(len(size_names))],
                                   colour_names[rng.randint(len(colour_names))], SHAPES[rng.randint(3)])
            side = SIZES[size] * s * rng.uniform(0.92, 1.08)
            slack_x = max(column - side - 2, 0) / 2
            cx = (col + 0.5) * column + rng.uniform(-slack_x, slack_x)
            cy = rng.uniform(side / 2 + 1, s - side / 2 - 1)
            _draw(draw, shape, cx, cy, side, COLOURS[colour])
            scene.append((size, colour, shape, col))
        images[i] = np.asarray(img)
        captions.append(describe(scene))
        objects.append(scene)
    return ShapeScenes(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), captions, objects)


def write_shapes_folder(folder: str | Path, n: int, seed: int = 0, image_size: int = 64,
                        captions_name: str = "captions.txt") -> Path:
    """Write ``n`` scenes as PNGs into ``folder`` with a Flickr8k-style captions file; returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    scenes = make_shapes(n, seed, image_size)
    lines = []
    for i, caption in enumerate(scenes.captions):
        name = f"shape_{seed}_{i:05d}.png"
        Image.fromarray(scenes.images[i].permute(1, 2, 0).numpy()).save(folder / name)
        lines.append(f"{name}#0\t{caption}\n")
    path = folder / captions_name
    path.write_text("".join(lines), encoding="utf-8")
    return path

