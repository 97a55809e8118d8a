// rnnkit fused engine: the Elman RNN and the LSTM, one time step forward and backward (see cells.cpp, step_common.h).
#include "step_common.h"

namespace rnnkit {
namespace {
using namespace steps;

// ------------------------------------------------------------------------------------------------ RNN
template <typename S, bool kRelu>
RNNKIT_INLINE S rnn_activation(S pre) { return kRelu ? (pre > S(0) ? pre : S(0)) : Math<S>::tanh(pre); }

template <typename S, bool kRelu, bool kZone, bool kLN>
void rnn_forward(Ctx<S>& c, int64_t t) {
  const S* hw = nullptr;                                           // layer norm: h_{t-1} W, normalised below
  if constexpr (kLN) hw = ln_product(c, c.fw[0], recurrent_input(c, t));
  else c.fw[0].run(c.hs.select(0, t + 1), recurrent_input(c, t), true);  // x_t U + (h_{t-1} [* m]) W
  S* hs = Ctx<S>::ptr(c.hs);
  S* act = Ctx<S>::ptr(c.gates);                                  // zoneout: f(a_t) before it
  const S* b = c.bias;
  const int64_t N = c.N, H = c.H;
  for_rows(c, t, [&](int64_t n, bool valid) {
    const S* hp = hs + (t * N + n) * H;
    S* a = hs + ((t + 1) * N + n) * H;
    if constexpr (kLN) {                                            // a_t = LN(x_t U) + LN(h_{t-1} W) + b
      ln_input_row(c, t, n, a);
      ln_row<S, true>(hw + n * H, a, c.ln_g, c.ln_b, c.norm_row(t, n), c.rstd_row(t, n), 1, H);
    }
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      a[j] = rnn_activation<S, kRelu>(a[j] + b[j]);                 // h_t = f(a_t), a_t = x_t U + h_{t-1} W + b
    }
    if constexpr (kZone) {
      if (act) std::memcpy(act + (t * N + n) * H, a, H * sizeof(S));
      zone(a, hp, c.zone_row(c.zh, t, n), H);                      // h_t = z h_{t-1} + (1 - z) f(a_t)
    }
    if (!valid) hold(a, hp, H);
  });
}

template <typename S, bool kRelu, bool kZone, bool kLN>
void rnn_backward(Ctx<S>& c, int64_t t) {
  const S* dy = c.dy_at(t);
  const S* hs = Ctx<S>::ptr(c.hs);
  const S* act = Ctx<S>::ptr(c.gates);
  S* dG = Ctx<S>::ptr(c.dG);
  S* dh = Ctx<S>::ptr(c.dh);
  const int64_t N = c.N, H = c.H;
  for_rows(c, t, [&](int64_t n, bool valid) {
    if constexpr (kLN) rebuild_row(c, t, n);
    const S* h = (kZone && act ? act : hs + N * H) + (t * N + n) * H;   // f(a_t)
    const S* y = dy + n * H;
    S* g = dG + (t * N + n) * H;
    S* d_h = dh + n * H;
    if (!valid) {
      pass_back(g, H, d_h, y, H);
      if constexpr (kLN) c.zero_dA_row(t, n), ln_input_backward(c, t, n, g);
      return;
    }
    const S* z = kZone ? c.zone_row(c.zh, t, n) : nullptr;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      S d;
      if constexpr (kZone) d = unzone(d_h, y, z, j); else d = d_h[j] + y[j], d_h[j] = S(0);
      g[j] = kRelu ? (h[j] > S(0) ? d : S(0)) : d * (S(1) - h[j] * h[j]);  // da_t = dh_t f'(a_t)
    }
    if constexpr (kLN) {                                            // d(h W) and d(x_t U) through LN
      ln_row_backward(g, c.norm_row(t, n), c.ln_g, c.rstd_row(t, n), c.dA_row(t, n), 1, H);
      ln_input_backward(c, t, n, g);
    }
  });
  add_recurrent_grad(c, c.bw[0], (kLN ? c.dA : c.dG).select(0, t));  // dh_{t-1} += da_t W^T [* m]
}

// Zoneout's f(a_t) (the backward's `act`) of window row r from LN(x_t U) in gates and the saved LN(h W).
template <typename S, bool kRelu>
void rnn_rebuild(Ctx<S>& c, int64_t r) {
  S* a = add_saved_ln(c, r, 0, 1);
  const S* b = c.bias;
#pragma omp simd
  for (int64_t j = 0; j < c.H; ++j) a[j] = rnn_activation<S, kRelu>(a[j] + b[j]);
}

// ----------------------------------------------------------------------------------------------- LSTM
// [a_i a_f a_g a_o] + b -> [i f g o] in place, unit j.
template <typename S>
RNNKIT_INLINE void lstm_activation(S* a, const S* b, int64_t H, int64_t j) {
  const S i = Math<S>::sigmoid(a[j] + b[j]), f = Math<S>::sigmoid(a[H + j] + b[H + j]);
  const S g = Math<S>::tanh(a[2 * H + j] + b[2 * H + j]), o = Math<S>::sigmoid(a[3 * H + j] + b[3 * H + j]);
  a[j] = i, a[H + j] = f, a[2 * H + j] = g, a[3 * H + j] = o;
}

// C^_t = f_t C_{t-1} + i_t C~_t of unit j from the activated gates (before zoneout): the forward's, and the
// backward's where it remakes C^_t, in one expression so that both get the same bits.
template <typename S>
RNNKIT_INLINE S lstm_cell_state(const S* a, const S* cp, int64_t H, int64_t j) {
  return a[H + j] * cp[j] + a[j] * a[2 * H + j];
}

// With a projection (proj_size) the step's o_t * tanh(C_t) goes to cell_out and h_t = (o_t tanh C_t) R is one more
// product; the rows past a sequence's end are held after it. (No zoneout or recurrent dropout with it.)
template <typename S, bool kZone, bool kLN>
void lstm_forward(Ctx<S>& c, int64_t t) {
  const S* hw = nullptr;                                           // layer norm: h_{t-1} W, normalised below
  if constexpr (kLN) hw = ln_product(c, c.fw[0], recurrent_input(c, t));
  else c.fw[0].run(c.gates.select(0, t), recurrent_input(c, t), true);  // [a_i a_f a_g a_o] = x_t U + h_{t-1} W (+ b)
  S* gates = Ctx<S>::ptr(c.gates);
  const S* b = c.bias;
  S* hs = Ctx<S>::ptr(c.hs);
  S* cs = Ctx<S>::ptr(c.cs);
  const int64_t N = c.N, H = c.H, P = c.P, NH = N * H;
  S* out = c.projected ? Ctx<S>::ptr(c.cell_out) + t * NH : hs + (t + 1) * N * P;  // rows of H (P == H unprojected)
  for_rows(c, t, [&](int64_t n, bool valid) {
    S* a = gates + (t * N + n) * 4 * H;
    const S* cp = cs + (t * N + n) * H;
    const S* hp = hs + (t * N + n) * P;
    S* hq = out + n * H;
    S* cq = cs + NH + (t * N + n) * H;
    if constexpr (kLN) {                                            // [a_i a_f a_g a_o] = LN(x_t U) + LN(h W) + b
      ln_input_row(c, t, n, a);
      ln_row<S, true>(hw + n * 4 * H, a, c.ln_g, c.ln_b, c.norm_row(t, n), c.rstd_row(t, n), 4, H);
    }
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      lstm_activation(a, b, H, j);                                  // i f g o = σ σ tanh σ (a + b)
      const S cn = lstm_cell_state(a, cp, H, j);                    // C_t = f_t C_{t-1} + i_t C~_t
      cq[j] = cn;
      if constexpr (!kLN) hq[j] = a[3 * H + j] * Math<S>::tanh(cn);  // h_t = o_t tanh(C_t)
    }
    if constexpr (kLN) {                                            // h^_t = o_t tanh(LN(C^_t))
      S* ch = Ctx<S>::ptr(c.scratch) + n * c.GH;                    // (not kept: the backward remakes it)
      ln_normalise(cq, ch, H);
      const S* gc = c.lnc_g;
      const S* bc = c.lnc_b;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) hq[j] = a[3 * H + j] * Math<S>::tanh(ch[j] * gc[j] + bc[j]);
    }
    if constexpr (kZone) {
      zone(cq, cp, c.zone_row(c.zc, t, n), H);                     // C_t = z C_{t-1} + (1 - z) C^_t
      zone(hq, hp, c.zone_row(c.zh, t, n), H);                     // h_t = z h_{t-1} + (1 - z) h^_t
    }
    if (!valid) {
      hold(cq, cp, H);
      if (!c.projected) hold(hq, hp, H);
    }
  });
  if (!c.projected) return;
  c.proj_fw.run(c.hs.select(0, t + 1), c.cell_out.select(0, t), false);  // h_t = (o_t tanh C_t) R
  if (c.mask == nullptr) return;
  for (int64_t n = 0; n < N; ++n)
    if (!c.valid(t, n)) hold(hs + ((t + 1) * N + n) * P, hs + (t * N + n) * P, P);
}

// The input, forget and candidate gates' gradients from the whole dC_t = dct; returns dC_{t-1} through the step.
template <typename S>
RNNKIT_INLINE S lstm_cell_backward(const S* a, S* g, S cp, S dct, int64_t H, int64_t j) {
  const S i = a[j], f = a[H + j], gg = a[2 * H + j];
  g[j] = dct * gg * i * (S(1) - i);                             // da_i = dC_t C~_t σ'
  g[H + j] = dct * cp * f * (S(1) - f);                         // da_f = dC_t C_{t-1} σ'
  g[2 * H + j] = dct * i * (S(1) - gg * gg);                    // da_g = dC_t i_t tanh'
  return dct * f;                                               // dC_{t-1}
}

// One unit's gate gradients at one step from dL/d(o_t tanh C_t) = dn, dC_t from above dc and tanh(C_t) = tc;
// returns dC_{t-1} through the step.
template <typename S>
RNNKIT_INLINE S lstm_unit_backward(const S* a, S* g, S cp, S tc, S dc, S dn, int64_t H, int64_t j) {
  const S o = a[3 * H + j];
  g[3 * H + j] = dn * tc * o * (S(1) - o);                      // da_o = dh_t tanh(C_t) σ'
  return lstm_cell_backward(a, g, cp, dc + dn * o * (S(1) - tc * tc), H, j);   // dC_t = dC + dh o tanh'
}

// The layer-normalised LSTM's row, h^_t = o_t tanh(y) with y = LN(C^_t) = ch g_c + b_c: from dh^_t (dn, after
// zoneout's split) da_o into g, dy (for g_c and b_c) and, in dc_ln, the part of dC^_t that comes through h^_t.
template <typename S>
RNNKIT_INLINE void lstm_ln_backward(const S* a, S* g, const S* dn, const S* ch, const S* gc, const S* bc, S rstd_c,
                                   S* dy, S* dc_ln, int64_t H) {
  const S* o = a + 3 * H;
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const S tc = Math<S>::tanh(ch[j] * gc[j] + bc[j]);
    g[3 * H + j] = dn[j] * tc * o[j] * (S(1) - o[j]);            // da_o = dh^_t tanh(y) σ'
    dy[j] = dn[j] * o[j] * (S(1) - tc * tc);                     // dy = dh^_t o_t tanh'
  }
  ln_row_backward(dy, ch, gc, &rstd_c, dc_ln, 1, H);             // d(C^_t) through LN
}

// The projected LSTM's dh_t of the valid rows into d_proj (zero past a sequence's end, where dh passes straight
// back), then d(o_t tanh C_t) = dh_t R^T into scratch_h.
template <typename S>
void lstm_projection_backward(Ctx<S>& c, int64_t t, const S* dy) {
  const int64_t N = c.N, P = c.P;
  S* dh = Ctx<S>::ptr(c.dh);
  S* dp = Ctx<S>::ptr(c.d_proj) + t * N * P;
  for_rows(c, t, [&](int64_t n, bool valid) {
    S* d_h = dh + n * P;
    S* e = dp + n * P;
    const S* y = dy + n * P;
    if (!valid) return pass_back(e, P, d_h, y, P);
#pragma omp simd
    for (int64_t j = 0; j < P; ++j) e[j] = d_h[j] + y[j], d_h[j] = S(0);
  });
  c.proj_bw.run(c.scratch_h, c.d_proj.select(0, t), false);
}

template <typename S, bool kZone, bool kLN>
void lstm_backward(Ctx<S>& c, int64_t t) {
  const S* dy = c.dy_at(t);
  const S* gates = Ctx<S>::ptr(c.gates);
  const S* cs = Ctx<S>::ptr(c.cs);
  S* dG = Ctx<S>::ptr(c.dG);
  S* dh = Ctx<S>::ptr(c.dh);
  S* dc = Ctx<S>::ptr(c.dc);
  const int64_t N = c.N, H = c.H, NH = N * H;
  if (c.projected) lstm_projection_backward(c, t, dy);
  const S* dm = Ctx<S>::ptr(c.scratch_h);
  for_rows(c, t, [&](int64_t n, bool valid) {
    if constexpr (kLN) rebuild_row(c, t, n);
    const S* a = gates + (t * N + n) * 4 * H;
    S* g = dG + (t * N + n) * 4 * H;
    const S* cp = cs + (t * N + n) * H;
    const S* cq = cp + NH;
    S* d_c = dc + n * H;
    if (c.projected) {
      if (!valid) return std::fill(g, g + 4 * H, S(0));
      const S* e = dm + n * H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) d_c[j] = lstm_unit_backward(a, g, cp[j], Math<S>::tanh(cq[j]), d_c[j], e[j], H, j);
      return;
    }
    const S* y = dy + n * H;
    S* d_h = dh + n * H;
    if constexpr (kLN) {
      S* dA = c.dA_row(t, n);
      S* dl = Ctx<S>::ptr(c.dlnc) + (t * N + n) * H;
      if (!valid) {
        S* ch = c.c_hat_row(t, n);                                  // (zeros: the gains' sums read every row)
        c.zero_dA_row(t, n), std::fill(dl, dl + H, S(0)), std::fill(ch, ch + H, S(0));
        pass_back(g, 4 * H, d_h, y, H);
        return ln_input_backward(c, t, n, g);
      }
      const S* zh = kZone ? c.zone_row(c.zh, t, n) : nullptr;
      const S* zc = kZone ? c.zone_row(c.zc, t, n) : nullptr;
      S* dn = Ctx<S>::ptr(c.scratch) + n * c.GH;                   // dh^_t, then dC^_t through LN (2 x H)
      S* dct = dn + H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        if constexpr (kZone) dn[j] = unzone(d_h, y, zh, j); else dn[j] = d_h[j] + y[j], d_h[j] = S(0);
      }
      S* ch = c.c_hat_row(t, n);                                    // LN(C^_t)'s normalised values, remade
      if constexpr (kZone) {
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) ch[j] = lstm_cell_state(a, cp, H, j);
      }
      const S rstd_c = ln_normalise(kZone ? ch : cq, ch, H);       // (without zoneout C^_t is the saved C_t)
      lstm_ln_backward(a, g, dn, ch, c.lnc_g, c.lnc_b, rstd_c, dl, dct, H);
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const S dc_t = d_c[j];
        const S down = kZone ? dc_t * (S(1) - zc[j]) : dc_t;          // the part of dC_t that reaches C^_t
        d_c[j] = lstm_cell_backward(a, g, cp[j], down + dct[j], H, j) + (kZone ? dc_t * zc[j] : S(0));
      }
      ln_row_backward(g, c.norm_row(t, n), c.ln_g, c.rstd_row(t, n), dA, 4, H);  // d(h W) through LN
      return ln_input_backward(c, t, n, g);                           // d(x_t U) through LN
    }
    if (!valid) return pass_back(g, 4 * H, d_h, y, H);
    if constexpr (kZone) {
      const S* zh = c.zone_row(c.zh, t, n);
      const S* zc = c.zone_row(c.zc, t, n);
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const S dn = unzone(d_h, y, zh, j);                         // dh^_t; d_h keeps dh_t z_h
        const S c_hat = lstm_cell_state(a, cp, H, j);                // C^_t, before zoneout
        const S dc_t = d_c[j];
        d_c[j] = lstm_unit_backward(a, g, cp[j], Math<S>::tanh(c_hat), dc_t * (S(1) - zc[j]), dn, H, j)
                 + dc_t * zc[j];                                    // dC_{t-1}: through C^_t, and straight
      }
    } else {
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        d_c[j] = lstm_unit_backward(a, g, cp[j], Math<S>::tanh(cq[j]), d_c[j], d_h[j] + y[j], H, j);
        d_h[j] = S(0);
      }
    }
  });
  add_recurrent_grad(c, c.bw[0], (kLN ? c.dA : c.dG).select(0, t));  // dh_{t-1} += dG_t W^T [* m]
}

// The activated gates of window row r from LN(x_t U) in gates and the saved LN(h W).
template <typename S>
void lstm_rebuild(Ctx<S>& c, int64_t r) {
  S* a = add_saved_ln(c, r, 0, 4);
#pragma omp simd
  for (int64_t j = 0; j < c.H; ++j) lstm_activation(a, c.bias, c.H, j);
}

}  // namespace

template <typename S>
Row<S> rnn_lstm_rebuild(Mode mode, bool zoned) {
  switch (mode) {
    case Mode::kRnnTanh: return zoned ? rnn_rebuild<S, false> : nullptr;   // (without zoneout: h_t is f(a_t))
    case Mode::kRnnRelu: return zoned ? rnn_rebuild<S, true> : nullptr;
    case Mode::kLstm: return lstm_rebuild<S>;
    default: return nullptr;
  }
}
template Row<float> rnn_lstm_rebuild<float>(Mode, bool);
template Row<double> rnn_lstm_rebuild<double>(Mode, bool);

template <typename S, bool kZone, bool kLN>
Step<S> rnn_lstm_step(Mode mode, bool backward) {
  switch (mode) {
    case Mode::kRnnTanh:
      return backward ? rnn_backward<S, false, kZone, kLN> : rnn_forward<S, false, kZone, kLN>;
    case Mode::kRnnRelu:
      return backward ? rnn_backward<S, true, kZone, kLN> : rnn_forward<S, true, kZone, kLN>;
    case Mode::kLstm: return backward ? lstm_backward<S, kZone, kLN> : lstm_forward<S, kZone, kLN>;
    default: return nullptr;
  }
}

#define RNNKIT_STEPS(S)                                                                                      \
  template Step<S> rnn_lstm_step<S, false, false>(Mode, bool);                                               \
  template Step<S> rnn_lstm_step<S, true, false>(Mode, bool);                                                \
  template Step<S> rnn_lstm_step<S, false, true>(Mode, bool);                                                \
  template Step<S> rnn_lstm_step<S, true, true>(Mode, bool);
RNNKIT_STEPS(float)
RNNKIT_STEPS(double)
#undef RNNKIT_STEPS

}  // namespace rnnkit
