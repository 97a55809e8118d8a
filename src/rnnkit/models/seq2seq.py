"""Sequence to sequence: an encoder reads the source, a decoder writes the target one token at a time.

The model, top to bottom (time-major tensors, ``S`` source steps, ``T`` target steps, ``N`` sentences)::

    src (S, N) ──[reverse each sentence within its length, if reverse_source]──> embedding ─> dropout
        ─> encoder: rnnkit LSTM/GRU, optionally bidirectional ─> memory (N, S, D*He) and final states
    bridge:  s_0 = tanh(W_b [h_fwd; h_bwd] + b_b) for every decoder layer     (or zeros: bridge="zero")
    decoder, for t = 1..T (one rnnkit cell per layer, stepped by hand):
        x_t  = [emb(y_{t-1}); h~_{t-1}]          input feeding (Luong et al. 2015): the last attentional vector
        s_t  = cells(x_t, s_{t-1})               stacked LSTMCell / GRUCell, dropout between layers
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

For decoding, :meth:`Seq2Seq.encode` gives a :class:`DecoderState` and :meth:`Seq2Seq.step` advances it one
token; the state's :meth:`DecoderState.reorder` picks rows, which is all beam search needs
(:mod:`rnnkit.decoding.beam`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cells import GRUCell, LSTMCell, RNNCell, gru_step, lstm_step, rnn_step
from ..engine import reverse_padded
from ..layers import SCORES, make_attention
from .recurrent import CELLS, make_recurrent

ATTENTIONS = ("none",) + SCORES
BRIDGES = ("linear", "zero")


@dataclass
class Seq2SeqConfig:
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
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}; expected one of {CELLS}")
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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Seq2SeqConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class DecoderState:
    """Everything the decoder carries from one step to the next, one row per hypothesis.

    ``hidden``: one entry per decoder layer, ``h`` (B, H) or ``(h, c)``; ``feed``: the last attentional
    vector (B, H) (input feeding); ``memory`` (B, S, K), ``cache`` (the attention's precomputed keys), ``mask``
    (B, S) bool; ``summary`` (B, K): the encoder's final states (the fixed context without attention);
    ``attention``: the last step's weights (B, S) or None.
    """

    __slots__ = ("hidden", "feed", "memory", "cache", "mask", "summary", "attention")

    def __init__(self, hidden: list, feed: Tensor, memory: Tensor, cache: Tensor | None, mask: Tensor,
                 summary: Tensor, attention: Tensor | None = None) -> None:
        self.hidden, self.feed, self.memory, self.cache = hidden, feed, memory, cache
        self.mask, self.summary, self.attention = mask, summary, attention

    def reorder(self, indices: Tensor) -> "DecoderState":
        """The state of rows ``indices`` (B',), in that order: beam search's expansion and reordering."""
        pick = lambda t: None if t is None else t.index_select(0, indices)
        hidden = [tuple(pick(x) for x in h) if isinstance(h, tuple) else pick(h) for h in self.hidden]
        return DecoderState(hidden, pick(self.feed), pick(self.memory), pick(self.cache), pick(self.mask),
                            pick(self.summary), pick(self.attention))

    def __len__(self) -> int:
        return self.feed.shape[0]


def _cell_step(cell: nn.Module, x: Tensor, state, weight_ih: Tensor, bias_ih: Tensor | None):
    """One step of ``cell`` with its own recurrent weights and the given input weights and input bias (the bias
    may be (B, G*H): a precomputed share of the input projection)."""
    if isinstance(cell, LSTMCell):
        return lstm_step(x, state, weight_ih, cell.weight_hh, bias_ih, cell.bias_hh)
    if isinstance(cell, GRUCell):
        return gru_step(x, state, weight_ih, cell.weight_hh, bias_ih, cell.bias_hh, cell.reset_after)
    return rnn_step(x, state, weight_ih, cell.weight_hh, bias_ih, cell.bias_hh, cell.nonlinearity)


def _make_cell(cell: str, input_size: int, hidden_size: int, forget_bias: float | None) -> nn.Module:
    if cell == "lstm":
        return LSTMCell(input_size, hidden_size, forget_bias=forget_bias)
    if cell in ("gru", "gru-torch"):
        return GRUCell(input_size, hidden_size, reset_after=cell == "gru-torch")
    return RNNCell(input_size, hidden_size, nonlinearity="relu" if cell == "rnn-relu" else "tanh")


class Seq2Seq(nn.Module):
    """Encoder, bridge and attentional decoder (see the module's docstring).

    ``logits = model(src (S, N), src_lengths (N,), tgt_in (T, N))`` -> (T, N, V) with teacher forcing;
    ``sample_ratio`` > 0 feeds the model's own greedy prediction instead of the reference at each step with
    that probability (scheduled sampling, Bengio et al. 2015).
    """

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = c = config
        self.src_embedding = nn.Embedding(c.src_vocab_size, c.embed_size)
        self.tgt_embedding = self.src_embedding if c.share_embeddings else nn.Embedding(c.tgt_vocab_size,
                                                                                         c.embed_size)
        self.encoder = make_recurrent(c.cell, c.embed_size, c.hidden_size, c.encoder_layers, c.dropout,
                                      bidirectional=c.bidirectional, engine=c.engine, forget_bias=c.forget_bias)
        H, K = c.dec_hidden, c.memory_size
        self.lstm = c.cell == "lstm"
        if c.bridge == "linear":
            self.bridge = nn.Linear(K, H * c.decoder_layers)
            self.bridge_c = nn.Linear(K, H * c.decoder_layers) if self.lstm else None
        self.cells = nn.ModuleList(
            _make_cell(c.cell, (c.embed_size + (H if c.input_feeding else 0)) if k == 0 else H, H, c.forget_bias)
            for k in range(c.decoder_layers))
        self.attention = (None if c.attention == "none"
                          else make_attention(c.attention, H, K, c.attention_size))
        self.combine = nn.Linear(K + H, H, bias=False)     # h~_t = tanh(W_c [c_t; s_t])
        self.output = nn.Linear(H, c.tgt_vocab_size)
        if c.init_range is not None:
            for p in self.parameters():
                nn.init.uniform_(p, -c.init_range, c.init_range)

    # ------------------------------------------------------------------ encoder

    def encoder_input(self, src: Tensor, src_lengths: Tensor) -> Tensor:
        """The ids the encoder reads: ``src``, each sentence reversed within its length if ``reverse_source``."""
        if self.config.reverse_source:
            return reverse_padded(src.unsqueeze(2), src_lengths).squeeze(2)
        return src

    def encode(self, src: Tensor, src_lengths: Tensor) -> DecoderState:
        """Run the encoder and the bridge: the decoder's state before its first step."""
        c = self.config
        src_lengths = src_lengths.to(src.device)
        emb = F.dropout(self.src_embedding(self.encoder_input(src, src_lengths)), c.dropout, self.training)
        out, final = self.encoder(emb, lengths=src_lengths)               # (S, N, K), (L*D, N, He)
        h_n = final[0] if isinstance(final, tuple) else final
        N = src.shape[1]
        top = h_n[-c.directions:]                                          # the top layer's directions
        summary = top.transpose(0, 1).reshape(N, c.memory_size)            # [h_fwd; h_bwd] (N, K)
        memory = out.transpose(0, 1)                                       # (N, S, K)
        mask = torch.arange(src.shape[0], device=src.device).unsqueeze(0) < src_lengths.unsqueeze(1)
        H, L = c.dec_hidden, c.decoder_layers
        if c.bridge == "linear":
            h0 = torch.tanh(self.bridge(summary)).view(N, L, H).unbind(1)
            if self.lstm:
                c0 = self.bridge_c(summary).view(N, L, H).unbind(1)
                hidden = list(zip(h0, c0))
            else:
                hidden = list(h0)
        else:
            zero = summary.new_zeros(N, H)
            hidden = [(zero, zero) if self.lstm else zero for _ in range(L)]
        cache = None if self.attention is None else self.attention.precompute(memory)
        return DecoderState(hidden, summary.new_zeros(N, H), memory, cache, mask, summary)

    # ------------------------------------------------------------------ decoder

    def embed_input(self, emb: Tensor) -> Tensor:
        """The embedding's share of the first decoder layer's input projection, ``emb U_e + b_ih`` (..., G*H).

        The first layer reads ``[emb(y_{t-1}); h~_{t-1}]``; its input matmul splits into an embedding part, done
        here for all steps at once under teacher forcing, and an input-feeding part, done step by step.
        """
        cell = self.cells[0]
        return F.linear(emb, cell.weight_ih[:, : self.config.embed_size], cell.bias_ih)

    def _advance(self, embedded: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """One decoder step from :meth:`embed_input` of the previous token: (h~_t (B, H), new state)."""
        c = self.config
        hidden = []
        x = None
        for k, cell in enumerate(self.cells):
            if k == 0:        # x_t U = emb U_e + h~_{t-1} U_f, the first term precomputed (bias included)
                feed = state.feed if c.input_feeding else state.feed[:, :0]
                h = _cell_step(cell, feed, state.hidden[0], cell.weight_ih[:, c.embed_size:], embedded)
            else:
                h = _cell_step(cell, x, state.hidden[k], cell.weight_ih, cell.bias_ih)
            hidden.append(h)
            x = h[0] if self.lstm else h
            if k < len(self.cells) - 1:
                x = F.dropout(x, c.dropout, self.training)
        query = x
        if self.attention is None:
            context, weights = state.summary, None
        else:
            context, weights = self.attention(query, state.memory, state.mask, cache=state.cache)
        attentional = torch.tanh(self.combine(torch.cat([context, query], dim=1)))
        return attentional, DecoderState(hidden, attentional, state.memory, state.cache, state.mask,
                                         state.summary, weights)

    def logits(self, attentional: Tensor) -> Tensor:
        return self.output(F.dropout(attentional, self.config.dropout, self.training))

    def step(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """One decoding step: previous tokens (B,) -> logits (B, V) and the new state (``.attention`` set)."""
        emb = F.dropout(self.tgt_embedding(tokens), self.config.dropout, self.training)
        attentional, state = self._advance(self.embed_input(emb), state)
        return self.logits(attentional), state

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, sample_ratio: float = 0.0) -> Tensor:
        """Teacher-forced logits (T, N, V) for ``tgt_in`` (T, N) (its first row is the EOS-as-BOS)."""
        state = self.encode(src, src_lengths)
        T = tgt_in.shape[0]
        if sample_ratio <= 0 or not self.training:
            emb = F.dropout(self.tgt_embedding(tgt_in), self.config.dropout, self.training)
            embedded = self.embed_input(emb)                                 # all steps in one matmul
            outputs = []
            for t in range(T):
                attentional, state = self._advance(embedded[t], state)
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

