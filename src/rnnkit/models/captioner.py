"""Image captioning: a CNN reads the image, its output becomes the decoder's first state, and the decoder is fed
its previous word (Karpathy & Fei-Fei 2015; with ``attention``, Show, Attend and Tell, Xu et al. 2015)::

    image ──CNN──▶ grid G (N, C, h, w) ──avg-pool to p×p, flatten──▶ f (N, C·p·p)
                                                                      │
                             h_0 (, c_0) = tanh(f W_init + b_init)  ◀─┘   one block per layer (and for c)

    <eos>   w_1     w_2            inputs: the previous word (the caption shifted right; <eos> starts it)
      │      │       │
     [h]──▶ [h] ──▶ [h] ──▶ ...     rnnkit LSTM / GRU decoder, state from the image
      │      │       │
     w_1    w_2    <eos>           targets

With attention the decoder also reads, at every step, a context ``z_t = β_t · Σ_s α_ts G_s`` over the grid's
``h·w`` cells (additive attention of the previous top-layer state, gate ``β_t = σ(h_{t-1} W_β)``): its input is
``[E y_{t-1}; z_t]`` and its output layer sees ``[h_t; z_t]``.

Generation uses the step interface the decoding module drives: ``state = model.start(images)`` then
``logits, state = model.step(tokens, state)`` repeatedly; ``state.reorder(indices)`` reorders or repeats
the batch (beam search). Teacher-forced training runs the whole caption through the layer's engine in one call
(no attention) or steps through the same cell equations (attention); a test checks both give the same logits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.errors import DataError
from ..data.tensor_files import read_tensors
from ..layers import SCORES, make_attention
from .config import ModelConfig, initialize
from .recurrent import make_recurrent

ENCODERS = ("small", "resnet18", "resnet34", "resnet50")
ATTENTIONS = ("none",) + SCORES
NORMS = ("group", "batch")


@dataclass
class CaptionConfig(ModelConfig):
    """Everything needed to rebuild a :class:`CaptionModel`; saved in a run's ``config.json``."""

    vocab_size: int
    encoder: str = "small"            # small residual CNN from scratch, or a torchvision ResNet (optional dep.)
    widths: list[int] = field(default_factory=lambda: [32, 64, 128])   # small CNN: channels of each stage
    blocks: int = 1                   # small CNN: residual blocks per stage
    stem_pool: bool = False           # small CNN: a 2×2 max-pool after the stem (for images of 128 px and up)
    norm: str = "batch"               # small CNN: batch normalisation, or group (GroupNorm, 8 groups)
    image_size: int = 64
    pool: int = 2                     # the grid is average-pooled to pool×pool and flattened into f
    feature_dropout: float = 0.0
    cell: str = "lstm"
    embed_size: int = 128
    hidden_size: int = 256
    num_layers: int = 1
    dropout: float = 0.0              # on word embeddings, between layers, on the decoder output
    attention: str = "none"           # none | bahdanau | luong-dot | luong-general
    attention_size: int | None = None
    freeze_encoder: bool = False      # encoder weights fixed, run in eval mode (features can then be cached)
    init_range: float | None = None   # uniform(-r, r) for every parameter but the encoder's; None: PyTorch's
    forget_bias: float | None = None
    engine: str = "auto"
    max_length: int = 30              # words generated at most

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {self.encoder!r}; expected one of {ENCODERS}")
        super().__post_init__()
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; expected one of {NORMS}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"unknown attention {self.attention!r}; expected one of {ATTENTIONS}")
        if not self.widths or any(w < 1 for w in self.widths):
            raise ValueError(f"widths must be positive channel counts, got {self.widths}")
        self.widths = list(self.widths)


# ---------------------------------------------------------------------------------------------- encoders

def make_norm(kind: str, channels: int) -> nn.Module:
    """BatchNorm, or GroupNorm with 8 groups (or fewer when the channels don't divide).

    BatchNorm trains much faster here (synthetic scenes: training loss 0.005 after 200 steps, against 0.40 with
    GroupNorm), but its running averages can go stale: a captioner scored 0.46 nats/word on validation in
    evaluation mode against 0.02 with batch statistics. :meth:`CaptionModel.recalibrate_norm` recomputes them
    (PreciseBN) and the captioning task does so before every evaluation; afterwards evaluation mode scored 0.02.
    """
    return nn.GroupNorm(math.gcd(8, channels), channels) if kind == "group" else nn.BatchNorm2d(channels)


class BasicBlock(nn.Module):
    """He et al. 2016's basic residual block: two 3×3 convolutions and a shortcut (1×1 conv when shapes change)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, norm: str = "group") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = make_norm(norm, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = make_norm(norm, c_out)
        self.shortcut = (nn.Sequential() if stride == 1 and c_in == c_out else
                         nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), make_norm(norm, c_out)))

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class SmallResNet(nn.Module):
    """A small residual CNN trained from scratch: stem (3×3, stride 2), then one stage per width, each but the
    first halving the resolution. 64 px in, widths (32, 64, 128) → an 8×8 grid of 128 channels."""

    def __init__(self, widths: list[int], blocks: int = 1, stem_pool: bool = False, norm: str = "group") -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, 2, 1, bias=False), make_norm(norm, widths[0]),
                                   nn.ReLU(inplace=True)]
        if stem_pool:
            layers.append(nn.MaxPool2d(2))
        c = widths[0]
        for k, w in enumerate(widths):
            for b in range(blocks):
                layers.append(BasicBlock(c, w, stride=2 if k > 0 and b == 0 else 1, norm=norm))
                c = w
        self.body = nn.Sequential(*layers)
        self.out_channels = c

    def forward(self, images: Tensor) -> Tensor:
        return self.body(images)


class TorchvisionResNet(nn.Module):
    """torchvision's ResNet up to its last stage (no pooling, no classifier): the 7×7 grid of a 224 px image.

    Needs ``torchvision``; weights come only from a local file (:meth:`load_pretrained`), nothing is downloaded.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        try:
            import torchvision
        except ImportError:
            raise ValueError(f"encoder {name!r} needs torchvision, which is not installed; use the default "
                             f"encoder 'small' or install torchvision") from None
        net = getattr(torchvision.models, name)(weights=None)
        self.body = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3,
                                  net.layer4)
        self.out_channels = net.fc.in_features
        self.name = name

    def forward(self, images: Tensor) -> Tensor:
        """(N, 3, S, S) images → (N, C, S/32, S/32) features."""
        return self.body(images)

    def load_pretrained(self, path: str | Path) -> None:
        """Load torchvision's ImageNet weights from a local ``.pth`` or ``.safetensors`` file (fc.* ignored)."""
        what = f"torchvision {self.name} weights"
        state = read_tensors(path, what)
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise DataError(f"not {what} (no name-to-tensor mapping)", path)
        names = ["conv1", "bn1", None, None, "layer1", "layer2", "layer3", "layer4"]
        mapped = {}
        for key, value in state.items():
            head, _, rest = key.partition(".")
            if head in names:
                mapped[f"body.{names.index(head)}.{rest}"] = value
        own = self.state_dict()
        wrong = [f"{k} {tuple(v.shape)}, expected {tuple(own[k].shape)}" for k, v in mapped.items()
                 if k in own and v.shape != own[k].shape]
        if wrong:
            more = f" and {len(wrong) - 2} more" if len(wrong) > 2 else ""
            raise DataError(f"not {what} (tensors of another shape: {'; '.join(wrong[:2])}{more})", path)
        missing, _ = self.load_state_dict(mapped, strict=False)
        if missing:
            raise DataError(f"not {what} (missing {sorted(missing)[:3]})", path)


def make_encoder(config: CaptionConfig) -> nn.Module:
    if config.encoder == "small":
        return SmallResNet(config.widths, config.blocks, config.stem_pool, config.norm)
    return TorchvisionResNet(config.encoder)


# ---------------------------------------------------------------------------------------------- decoder state

@dataclass
class ImageFeatures:
    """What the encoder gives the decoder: ``pooled`` (N, F) for the first state, ``grid`` (N, S, C) or None."""

    pooled: Tensor
    grid: Tensor | None = None

    def index(self, idx: Tensor) -> "ImageFeatures":
        return ImageFeatures(self.pooled.index_select(0, idx),
                             None if self.grid is None else self.grid.index_select(0, idx))


@dataclass
class CaptionDecoderState:
    """The decoder's state between steps. ``h``/``c`` (layers, N, H) as rnnkit's layers; with attention the
    grid ``keys`` (N, S, C), its precomputed projection ``cache`` and the last step's ``weights`` (N, S)."""

    h: Tensor
    c: Tensor | None = None
    keys: Tensor | None = None
    cache: Tensor | None = None
    weights: Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.h.shape[1]

    def reorder(self, indices: Tensor) -> "CaptionDecoderState":
        """Keep, reorder or repeat batch entries: entry ``i`` of the result is entry ``indices[i]`` of this."""
        def pick(t, dim):
            return None if t is None else t.index_select(dim, indices)
        return CaptionDecoderState(pick(self.h, 1), pick(self.c, 1), pick(self.keys, 0), pick(self.cache, 0),
                            pick(self.weights, 0))


# ---------------------------------------------------------------------------------------------- the model

class CaptionModel(nn.Module):
    """``logits = model(images, inputs)`` for training; ``start`` / ``step`` for generation.

    ``images`` float (N, 3, S, S), normalised (:func:`rnnkit.data.images.normalize`); ``inputs`` (T, M) int64,
    the previous words; ``image_index`` (M,) picks the image of each caption (several captions per image share
    one encoder pass). Returns logits (T, M, V).
    """

    def __init__(self, config: CaptionConfig) -> None:
        super().__init__()
        self.config = c = config
        self.encoder = make_encoder(c)
        if c.freeze_encoder:
            self.encoder.requires_grad_(False)
        channels = self.encoder.out_channels
        self.feature_size = channels * c.pool * c.pool
        self.cell = c.recurrence
        self.init_state = nn.Linear(self.feature_size,
                                    c.num_layers * (2 if self.cell.has_cell_state else 1) * c.hidden_size)
        self.embedding = nn.Embedding(c.vocab_size, c.embed_size)
        self.context_size = channels if c.attention != "none" else 0
        self.rnn = make_recurrent(self.cell, c.embed_size + self.context_size, c.hidden_size, c.num_layers,
                                  c.dropout, engine=c.engine)
        if c.attention != "none":
            if c.attention == "luong-dot" and channels != c.hidden_size:
                raise ValueError(f"luong-dot attention needs hidden_size == the encoder's channels ({channels}); "
                                 f"use bahdanau or luong-general")
            self.attention = make_attention(c.attention, c.hidden_size, channels, c.attention_size)
            self.gate = nn.Linear(c.hidden_size, channels)
        self.out = nn.Linear(c.hidden_size + self.context_size, c.vocab_size)
        encoder = {id(p) for p in self.encoder.parameters()}
        initialize(self, c, [p for p in self.parameters() if id(p) not in encoder])   # the CNN keeps its own

    @property
    def has_attention(self) -> bool:
        return self.config.attention != "none"

    def train(self, mode: bool = True) -> "CaptionModel":
        super().train(mode)
        if self.config.freeze_encoder:
            self.encoder.eval()          # frozen: batch-norm statistics stay as loaded
        return self

    # ------------------------------------------------------------------ encoder side

    @torch.no_grad()
    def recalibrate_norm(self, batches) -> bool:
        """Recompute the encoder's batch-norm running statistics as the plain average over ``batches`` (an
        iterable of normalised image batches), PreciseBN-style; the EMA kept during training lags the weights.
        Nothing happens for a frozen encoder or one without batch norm; returns whether anything changed."""
        norms = [m for m in self.encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms or self.config.freeze_encoder:
            return False
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None                  # cumulative average
        was_training = self.encoder.training
        self.encoder.train()
        seen = 0
        try:
            for images in batches:
                self.encoder(images)
                seen += 1
        finally:
            for m, momentum in zip(norms, momenta):
                m.momentum = momentum
            self.encoder.train(was_training)
        if not seen:
            raise ValueError("recalibrate_norm needs at least one batch of images")
        return True

    def encode(self, images: Tensor) -> ImageFeatures:
        """Normalised images (N, 3, S, S) → pooled features (N, F) and, with attention, the grid (N, S', C)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_encoder):
            grid = self.encoder(images)
        pooled = F.adaptive_avg_pool2d(grid, self.config.pool).flatten(1)
        return ImageFeatures(pooled, grid.flatten(2).transpose(1, 2) if self.has_attention else None)

    def initial_state(self, features: ImageFeatures) -> CaptionDecoderState:
        """``h_0`` (and ``c_0``) = tanh of the linear map of the image's pooled features."""
        c = self.config
        f = F.dropout(features.pooled, c.feature_dropout, self.training)
        n = f.shape[0]
        blocks = torch.tanh(self.init_state(f)).view(n, -1, c.hidden_size).transpose(0, 1)   # (L or 2L, N, H)
        h, cell = (blocks[:c.num_layers], blocks[c.num_layers:]) if self.cell.has_cell_state else (blocks, None)
        keys = cache = None
        if self.has_attention:
            keys = features.grid
            cache = self.attention.precompute(keys)
        return CaptionDecoderState(h.contiguous(), None if cell is None else cell.contiguous(), keys, cache)

    def start(self, images: Tensor) -> CaptionDecoderState:
        """The decoding state before the first word, for normalised ``images`` (N, 3, S, S)."""
        return self.initial_state(self.encode(images))

    # ------------------------------------------------------------------ decoder side

    def _attend(self, state: CaptionDecoderState) -> tuple[Tensor, Tensor]:
        query = state.h[-1]
        context, weights = self.attention(query, state.keys, cache=state.cache)
        return context * torch.sigmoid(self.gate(query)), weights

    def step(self, tokens: Tensor, state: CaptionDecoderState) -> tuple[Tensor, CaptionDecoderState]:
        """Feed the previous words ``tokens`` (N,) → logits (N, V) for the next ones, and the new state."""
        c = self.config
        x = F.dropout(self.embedding(tokens), c.dropout, self.training)
        context = weights = None
        if self.has_attention:
            context, weights = self._attend(state)
            x = torch.cat([x, context], dim=-1)
        out, new = self.rnn.step(x, self.cell.pack(state.h, state.c))
        h, cell = self.cell.unpack(new)
        out = F.dropout(out, c.dropout, self.training)
        if context is not None:
            out = torch.cat([out, context], dim=-1)
        return self.out(out), CaptionDecoderState(h, cell, state.keys, state.cache, weights)

    def decode(self, features: ImageFeatures, inputs: Tensor) -> Tensor:
        """Teacher forcing: ``inputs`` (T, N) previous words, one caption per row of ``features`` → (T, N, V)."""
        c = self.config
        state = self.initial_state(features)
        if not self.has_attention:
            x = F.dropout(self.embedding(inputs), c.dropout, self.training)
            out, _ = self.rnn(x, self.cell.pack(state.h, state.c))
            return self.out(F.dropout(out, c.dropout, self.training))
        logits = []
        for t in range(inputs.shape[0]):
            step_logits, state = self.step(inputs[t], state)
            logits.append(step_logits)
        return torch.stack(logits)

    def forward(self, images: Tensor | ImageFeatures, inputs: Tensor, image_index: Tensor | None = None) -> Tensor:
        """``images``: normalised pixels, or :class:`ImageFeatures` already computed (a frozen encoder's cache)."""
        features = images if isinstance(images, ImageFeatures) else self.encode(images)
        if image_index is not None:
            features = features.index(image_index)
        return self.decode(features, inputs)


def caption_loss(logits: Tensor, targets: Tensor, pad: int = -100) -> Tensor:
    """Mean cross-entropy per target word (nats); positions with ``targets == pad`` don't count."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=pad)
