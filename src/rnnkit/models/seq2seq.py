"""Sequence to sequence: an encoder reads the source, a decoder writes the target one token at a time.

The model, top to bottom (time-major tensors, ``S`` source steps, ``T`` target steps, ``N`` sentences)::

    src (S, N) ──[reverse each sentence within its length, if reverse_source]──> embedding ─> dropout
        ─> encoder: rnnkit LSTM/GRU, optionally bidirectional ─> memory (N, S, D*He) and final states
    bridge:  s_0 = tanh(W_b [h_fwd; h_bwd] + b_b) for every decoder layer     (or zeros: bridge="zero")
    decoder, for t = 1..T (one rnnkit layer, stacked, advanced by its ``step``):
        x_t  = [emb(y_{t-1}); h~_{t-1}]          input feeding (Luong et al. 2015): the last attentional vector
        s_t  = decoder.step(x_t, s_{t-1})        stacked LSTM / GRU / RNN, dropout between layers
        c_t  = attention(s_t, memory, mask)      bahdanau | luong-dot | luong-general (padding masked with -inf)
             = [h_fwd; h_bwd]  for attention="none": the same fixed summary at every step (Cho et al. 2014)
        h~_t = tanh(W_c [c_t; s_t])              the attentional vector
        p(y_t | y_<t, x) = softmax(W_o dropout(h~_t) + b_o)

With ``attention="bahdanau"`` the score is Bahdanau's additive ``v^T tanh(W_q s + W_k h_j)``, used in this
decoder as OpenNMT's ``global_attention mlp`` does: the query is the current state ``s_t`` and the previous
context reaches the recurrence through input feeding. ``y_0`` is the target side's EOS id (fairseq's habit),
so no separate beginning-of-sentence symbol is needed.

Source reversal (Sutskever et al. 2014) is applied to the source ids before the embedding and is never undone:
the memory, the mask and the attention weights are in the order the encoder read the source.

For decoding, :meth:`Seq2Seq.encode` gives a :class:`Seq2SeqDecoderState` and :meth:`Seq2Seq.step` advances it
one token; the state's :meth:`Seq2SeqDecoderState.reorder` picks rows, which is all beam search needs
(:mod:`rnnkit.decoding.beam`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..engine import reverse_padded
from ..layers import SCORES, make_attention
from .config import ModelConfig, initialize
from .recurrent import make_recurrent

State = Tensor | tuple[Tensor, Tensor]

ATTENTIONS = ("none",) + SCORES
BRIDGES = ("linear", "zero")


@dataclass
class Seq2SeqConfig(ModelConfig):
    """Everything needed to rebuild a :class:`Seq2Seq`; saved in a run's ``config.json``."""

    src_vocab_size: int
    tgt_vocab_size: int
    tgt_eos_id: int = 0                 # the decoder's first input and the end of every target
    cell: str = "gru"
    embed_size: int = 256
    hidden_size: int = 256              # encoder units per direction
    decoder_hidden_size: int | None = None   # None: hidden_size * directions
    encoder_layers: int = 1
    decoder_layers: int = 1
    bidirectional: bool = True
    attention: str = "bahdanau"         # none | bahdanau | luong-dot | luong-general
    attention_size: int | None = None   # Bahdanau's inner size; None: the decoder's hidden size
    input_feeding: bool = True
    reverse_source: bool = False
    bridge: str = "linear"              # linear: tanh(W [h_fwd; h_bwd] + b); zero: s_0 = 0
    dropout: float = 0.0                # embeddings, between layers, before the output layer
    share_embeddings: bool = False      # one embedding for both sides (needs a shared vocabulary)
    init_range: float | None = None     # uniform(-r, r) for every parameter; None: PyTorch's
    forget_bias: float | None = None
    engine: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.attention not in ATTENTIONS:
            raise ValueError(f"unknown attention {self.attention!r}; expected one of {ATTENTIONS}")
        if self.bridge not in BRIDGES:
            raise ValueError(f"unknown bridge {self.bridge!r}; expected one of {BRIDGES}")
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError("share_embeddings needs one shared vocabulary (equal source and target sizes)")
        if self.attention == "luong-dot" and self.dec_hidden != self.memory_size:
            raise ValueError(f"luong-dot attention needs equal decoder and memory sizes, got {self.dec_hidden} "
                             f"and {self.memory_size}; use luong-general or bahdanau")

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def memory_size(self) -> int:
        return self.hidden_size * self.directions

    @property
    def dec_hidden(self) -> int:
        return self.decoder_hidden_size or self.memory_size


class Seq2SeqDecoderState:
    """Everything the seq2seq decoder carries from one step to the next, one row per hypothesis.

    ``hidden``: the decoder layer's state, ``h`` (layers, B, H) or ``(h, c)``; ``feed``: the last attentional
    vector (B, H) (input feeding); ``memory`` (B, S, K), ``cache`` (the attention's precomputed keys), ``mask``
    (B, S) bool; ``summary`` (B, K): the encoder's final states (the fixed context without attention);
    ``attention``: the last step's weights (B, S) or None.
    """

    __slots__ = ("hidden", "feed", "memory", "cache", "mask", "summary", "attention")

    def __init__(self, hidden: State, feed: Tensor, memory: Tensor, cache: Tensor | None, mask: Tensor,
                 summary: Tensor, attention: Tensor | None = None) -> None:
        self.hidden, self.feed, self.memory, self.cache = hidden, feed, memory, cache
        self.mask, self.summary, self.attention = mask, summary, attention

    def reorder(self, indices: Tensor) -> "Seq2SeqDecoderState":
        """The state of rows ``indices`` (B',), in that order: beam search's expansion and reordering."""
        def pick(t):
            return None if t is None else t.index_select(0, indices)
        def rows(h):
            return h.index_select(1, indices)                           # states are (layers, B, H)
        hidden = tuple(map(rows, self.hidden)) if isinstance(self.hidden, tuple) else rows(self.hidden)
        return Seq2SeqDecoderState(hidden, pick(self.feed), pick(self.memory), pick(self.cache), pick(self.mask),
                                   pick(self.summary), pick(self.attention))

    def __len__(self) -> int:
        return self.feed.shape[0]


def upgrade_state_dict(state: dict, prefix: str = "") -> dict:
    """Rename, in place, the weights of runs saved when the decoder was one cell per layer (``cells.{k}.weight_ih``)
    to the decoder layer's names (``decoder.weight_ih_l{k}``); the tensors are the same."""
    old = prefix + "cells."
    for key in [k for k in state if k.startswith(old)]:
        layer, name = key[len(old):].split(".", 1)
        state[f"{prefix}decoder.{name}_l{layer}"] = state.pop(key)
    return state


def _upgrade_hook(state: dict, prefix: str, *_) -> None:
    upgrade_state_dict(state, prefix)


class Seq2Seq(nn.Module):
    """Encoder, bridge and attentional decoder (see the module's docstring).

    ``logits = model(src (S, N), src_lengths (N,), tgt_in (T, N))`` -> (T, N, V) with teacher forcing;
    ``sample_ratio`` > 0 feeds the model's own greedy prediction instead of the reference at each step with
    that probability (scheduled sampling, Bengio et al. 2015).
    """

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = c = config
        self.cell = c.recurrence
        self.src_embedding = nn.Embedding(c.src_vocab_size, c.embed_size)
        self.tgt_embedding = self.src_embedding if c.share_embeddings else nn.Embedding(c.tgt_vocab_size,
                                                                                         c.embed_size)
        self.encoder = make_recurrent(self.cell, c.embed_size, c.hidden_size, c.encoder_layers, c.dropout,
                                      bidirectional=c.bidirectional, engine=c.engine)
        H, K = c.dec_hidden, c.memory_size
        if c.bridge == "linear":
            self.bridge = nn.Linear(K, H * c.decoder_layers)
            self.bridge_c = nn.Linear(K, H * c.decoder_layers) if self.cell.has_cell_state else None
        self.decoder = make_recurrent(self.cell, c.embed_size + (H if c.input_feeding else 0), H, c.decoder_layers,
                                      c.dropout, engine=c.engine)
        self.attention = (None if c.attention == "none"
                          else make_attention(c.attention, H, K, c.attention_size))
        self.combine = nn.Linear(K + H, H, bias=False)     # h~_t = tanh(W_c [c_t; s_t])
        self.output = nn.Linear(H, c.tgt_vocab_size)
        initialize(self, c)
        self._register_load_state_dict_pre_hook(_upgrade_hook)

    @staticmethod
    def upgrade_state_dict(state: dict) -> dict:
        """Weights saved by an older rnnkit under this model's current names (:func:`upgrade_state_dict`)."""
        return upgrade_state_dict(state)

    # ------------------------------------------------------------------ encoder

    def encoder_input(self, src: Tensor, src_lengths: Tensor) -> Tensor:
        """The ids the encoder reads: ``src``, each sentence reversed within its length if ``reverse_source``."""
        if self.config.reverse_source:
            return reverse_padded(src.unsqueeze(2), src_lengths).squeeze(2)
        return src

    def encode(self, src: Tensor, src_lengths: Tensor) -> Seq2SeqDecoderState:
        """Run the encoder and the bridge: the decoder's state before its first step."""
        c = self.config
        src_lengths = src_lengths.to(src.device)
        emb = F.dropout(self.src_embedding(self.encoder_input(src, src_lengths)), c.dropout, self.training)
        out, final = self.encoder(emb, lengths=src_lengths)               # (S, N, K), (L*D, N, He)
        h_n, _ = self.cell.unpack(final)
        N = src.shape[1]
        top = h_n[-c.directions:]                                          # the top layer's directions
        summary = top.transpose(0, 1).reshape(N, c.memory_size)            # [h_fwd; h_bwd] (N, K)
        memory = out.transpose(0, 1)                                       # (N, S, K)
        mask = torch.arange(src.shape[0], device=src.device).unsqueeze(0) < src_lengths.unsqueeze(1)
        H, L = c.dec_hidden, c.decoder_layers
        def per_layer(t):
            return t.view(N, L, H).transpose(0, 1).contiguous()         # (N, L*H) -> (L, N, H)
        if c.bridge == "linear":
            h0 = per_layer(torch.tanh(self.bridge(summary)))
            hidden = self.cell.pack(h0, per_layer(self.bridge_c(summary)) if self.cell.has_cell_state else None)
        else:
            zero = summary.new_zeros(L, N, H)
            hidden = self.cell.pack(zero, zero)
        cache = None if self.attention is None else self.attention.precompute(memory)
        return Seq2SeqDecoderState(hidden, summary.new_zeros(N, H), memory, cache, mask, summary)

    # ------------------------------------------------------------------ decoder

    def _advance(self, emb: Tensor, state: Seq2SeqDecoderState) -> tuple[Tensor, Seq2SeqDecoderState]:
        """One decoder step from the previous token's embedding ``emb`` (B, E): (h~_t (B, H), new state)."""
        x = torch.cat([emb, state.feed], dim=1) if self.config.input_feeding else emb
        query, hidden = self.decoder.step(x, state.hidden)                # s_t: the top layer's new state
        if self.attention is None:
            context, weights = state.summary, None
        else:
            context, weights = self.attention(query, state.memory, state.mask, cache=state.cache)
        attentional = torch.tanh(self.combine(torch.cat([context, query], dim=1)))
        return attentional, Seq2SeqDecoderState(hidden, attentional, state.memory, state.cache, state.mask,
                                                state.summary, weights)

    def logits(self, attentional: Tensor) -> Tensor:
        return self.output(F.dropout(attentional, self.config.dropout, self.training))

    def step(self, tokens: Tensor, state: Seq2SeqDecoderState) -> tuple[Tensor, Seq2SeqDecoderState]:
        """One decoding step: previous tokens (B,) -> logits (B, V) and the new state (``.attention`` set)."""
        emb = F.dropout(self.tgt_embedding(tokens), self.config.dropout, self.training)
        attentional, state = self._advance(emb, state)
        return self.logits(attentional), state

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, sample_ratio: float = 0.0) -> Tensor:
        """Teacher-forced logits (T, N, V) for ``tgt_in`` (T, N) (its first row is the EOS-as-BOS)."""
        state = self.encode(src, src_lengths)
        T = tgt_in.shape[0]
        if sample_ratio <= 0 or not self.training:
            emb = F.dropout(self.tgt_embedding(tgt_in), self.config.dropout, self.training)   # all steps at once
            outputs = []
            for t in range(T):
                attentional, state = self._advance(emb[t], state)
                outputs.append(attentional)
            return self.logits(torch.stack(outputs))                      # one output matmul for all steps
        logits, previous = [], None
        for t in range(T):
            tokens = tgt_in[t]
            if previous is not None:
                own = torch.rand(tokens.shape, device=tokens.device) < sample_ratio
                tokens = torch.where(own, previous, tokens)
            step_logits, state = self.step(tokens, state)
            logits.append(step_logits)
            previous = step_logits.detach().argmax(-1)
        return torch.stack(logits)


def seq2seq_loss(logits: Tensor, targets: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Mean cross-entropy per target token; padding (``-100``) ignored."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100,
                           label_smoothing=label_smoothing)


def describe(config: Seq2SeqConfig) -> str:
    c = config
    enc = f"{'bi' if c.bidirectional else 'uni'}-{c.cell} encoder {c.encoder_layers}x{c.hidden_size}"
    return (f"{enc}{' (source reversed)' if c.reverse_source else ''}, {c.cell} decoder "
            f"{c.decoder_layers}x{c.dec_hidden}, attention {c.attention}"
            f"{', input feeding' if c.input_feeding else ''}")

