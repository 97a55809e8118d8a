// rnnkit fused engine: one time step of each recurrence, forward and backward (buffers: see fused.h).
//
// Every step is: the recurrent matmul(s) (gemm.h), then ONE pass over the step's N x H elements (two for
// Cho's GRU, whose reset gate multiplies h before its second matmul) that applies the gates, the state
// update and the mask. The equations, the gate order and what is saved are those of engine/bptt.py.
// Masked rows (past a sequence's end): see hold() and pass_back().
#include "fused.h"

namespace rnnkit {
namespace {

// Past a sequence's end the forward holds the state: after the row's (unconditional, vectorized) update, the
// old state is copied over the new one. The mask never enters the simd loops: a scalar select there stops gcc
// from vectorizing them.
template <typename S>
RNNKIT_INLINE void hold(S* next, const S* prev, int64_t H) {
  std::memcpy(next, prev, H * sizeof(S));
}

// ... and the backward passes the gradient straight back: zero gate gradients (and extra rows `zero`),
// dh_{t-1} = dh_t + dY_t; dC_{t-1} = dC_t is left in place.
template <typename S>
RNNKIT_INLINE void pass_back(S* g, int64_t width, S* d_h, const S* y, int64_t H, S* zero = nullptr,
                             int64_t zero_width = 0) {
  std::fill(g, g + width, S(0));
  if (zero) std::fill(zero, zero + zero_width, S(0));
  for (int64_t j = 0; j < H; ++j) d_h[j] += y[j];
}

// ------------------------------------------------------------------------------------------------ RNN
template <typename S, bool kRelu>
void rnn_forward(Ctx<S>& c, int64_t t) {
  c.fw[0].run(c.hs.select(0, t + 1), c.hs.select(0, t), true);  // x_t U + h_{t-1} W
  S* hs = Ctx<S>::ptr(c.hs);
  const S* b = c.bias;
  const int64_t N = c.N, H = c.H;
  for_rows(c, t, [&](int64_t n, bool valid) {
    const S* hp = hs + (t * N + n) * H;
    S* a = hs + ((t + 1) * N + n) * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const S pre = a[j] + b[j];                                    // a_t = x_t U + h_{t-1} W + b
      a[j] = kRelu ? (pre > S(0) ? pre : S(0)) : Math<S>::tanh(pre);  // h_t = f(a_t)
    }
    if (!valid) hold(a, hp, H);
  });
}

template <typename S, bool kRelu>
void rnn_backward(Ctx<S>& c, int64_t t) {
  const S* dy = c.dy_at(t);
  const S* hs = Ctx<S>::ptr(c.hs);
  S* dG = Ctx<S>::ptr(c.dG);
  S* dh = Ctx<S>::ptr(c.dh);
  const int64_t N = c.N, H = c.H;
  for_rows(c, t, [&](int64_t n, bool valid) {
    const S* h = hs + ((t + 1) * N + n) * H;
    const S* y = dy + n * H;
    S* g = dG + (t * N + n) * H;
    S* d_h = dh + n * H;
    if (!valid) return pass_back(g, H, d_h, y, H);
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const S d = d_h[j] + y[j];
      g[j] = kRelu ? (h[j] > S(0) ? d : S(0)) : d * (S(1) - h[j] * h[j]);  // da_t = dh_t f'(a_t)
      d_h[j] = S(0);
    }
  });
  c.bw[0].run(c.dh, c.dG.select(0, t), true);                     // dh_{t-1} = da_t W^T
}

// ----------------------------------------------------------------------------------------------- LSTM
// With a projection (proj_size) the step's o_t * tanh(C_t) goes to cell_out and h_t = (o_t tanh C_t) R is one more
// product; the rows past a sequence's end are held after it.
template <typename S>
void lstm_forward(Ctx<S>& c, int64_t t) {
  c.fw[0].run(c.gates.select(0, t), c.hs.select(0, t), true);  // [a_i a_f a_g a_o] = x_t U + h_{t-1} W (+ b)
  S* gates = Ctx<S>::ptr(c.gates);
  const S* b = c.bias;
  S* hs = Ctx<S>::ptr(c.hs);
  S* cs = Ctx<S>::ptr(c.cs);
  const int64_t N = c.N, H = c.H, P = c.P, NH = N * H;
  S* out = c.projected ? Ctx<S>::ptr(c.cell_out) + t * NH : hs + (t + 1) * N * P;  // rows of H (P == H unprojected)
  for_rows(c, t, [&](int64_t n, bool valid) {
    S* a = gates + (t * N + n) * 4 * H;
    const S* cp = cs + (t * N + n) * H;
    S* hq = out + n * H;
    S* cq = cs + NH + (t * N + n) * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const S i = Math<S>::sigmoid(a[j] + b[j]), f = Math<S>::sigmoid(a[H + j] + b[H + j]);
      const S g = Math<S>::tanh(a[2 * H + j] + b[2 * H + j]), o = Math<S>::sigmoid(a[3 * H + j] + b[3 * H + j]);
      a[j] = i, a[H + j] = f, a[2 * H + j] = g, a[3 * H + j] = o;
      const S cn = f * cp[j] + i * g;                               // C_t = f_t C_{t-1} + i_t C~_t
      const S h_new = o * Math<S>::tanh(cn);                           // h_t = o_t tanh(C_t)
      cq[j] = cn;
      hq[j] = h_new;
    }
    if (!valid) {
      hold(cq, cp, H);
      if (!c.projected) hold(hq, hs + (t * N + n) * H, H);
    }
  });
  if (!c.projected) return;
  c.proj_fw.run(c.hs.select(0, t + 1), c.cell_out.select(0, t), false);  // h_t = (o_t tanh C_t) R
  if (c.mask == nullptr) return;
  for (int64_t n = 0; n < N; ++n)
    if (!c.valid(t, n)) hold(hs + ((t + 1) * N + n) * P, hs + (t * N + n) * P, P);
}

// One unit's gate gradients at one step from dL/d(o_t tanh C_t) = dn; updates dC in place.
template <typename S>
RNNKIT_INLINE void lstm_unit_backward(const S* a, S* g, const S* cp, const S* cq, S* d_c, S dn, int64_t H,
                                      int64_t j) {
  const S i = a[j], f = a[H + j], gg = a[2 * H + j], o = a[3 * H + j];
  const S tc = Math<S>::tanh(cq[j]);
  const S dct = d_c[j] + dn * o * (S(1) - tc * tc);              // dC_t
  g[j] = dct * gg * i * (S(1) - i);                             // da_i = dC_t C~_t σ'
  g[H + j] = dct * cp[j] * f * (S(1) - f);                      // da_f = dC_t C_{t-1} σ'
  g[2 * H + j] = dct * i * (S(1) - gg * gg);                    // da_g = dC_t i_t tanh'
  g[3 * H + j] = dn * tc * o * (S(1) - o);                      // da_o = dh_t tanh(C_t) σ'
  d_c[j] = dct * f;                                             // dC_{t-1}
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

template <typename S>
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
    const S* a = gates + (t * N + n) * 4 * H;
    S* g = dG + (t * N + n) * 4 * H;
    const S* cp = cs + (t * N + n) * H;
    const S* cq = cp + NH;
    S* d_c = dc + n * H;
    if (c.projected) {
      if (!valid) return std::fill(g, g + 4 * H, S(0));
      const S* e = dm + n * H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) lstm_unit_backward(a, g, cp, cq, d_c, e[j], H, j);
      return;
    }
    const S* y = dy + n * H;
    S* d_h = dh + n * H;
    if (!valid) return pass_back(g, 4 * H, d_h, y, H);
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      lstm_unit_backward(a, g, cp, cq, d_c, d_h[j] + y[j], H, j);
      d_h[j] = S(0);
    }
  });
  c.bw[0].run(c.dh, c.dG.select(0, t), true);                     // dh_{t-1} = dG_t W^T
}

// ------------------------------------------------------------------------------------ GRU (Cho et al.)
template <typename S>
void gru_forward(Ctx<S>& c, int64_t t) {
  const int64_t N = c.N, H = c.H, GH = c.GH;
  at::Tensor a_t = c.gates.select(0, t);
  c.fw[0].run(a_t.narrow(1, 0, 2 * H), c.hs.select(0, t), true);  // += h W_rz
  S* gates = Ctx<S>::ptr(c.gates);
  S* hs = Ctx<S>::ptr(c.hs);
  S* rh = Ctx<S>::ptr(c.scratch_h);
  const S* b = c.bias;
  for_rows(c, t, [&](int64_t n, bool) {
    S* a = gates + (t * N + n) * GH;
    const S* hp = hs + (t * N + n) * H;
    S* q = rh + n * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const S r = Math<S>::sigmoid(a[j] + b[j]), z = Math<S>::sigmoid(a[H + j] + b[H + j]);
      a[j] = r, a[H + j] = z;
      q[j] = r * hp[j];                                             // r_t * h_{t-1}
    }
  });
  c.fw[1].run(a_t.narrow(1, 2 * H, H), c.scratch_h, true);  // += (r*h) W_n
  for_rows(c, t, [&](int64_t n, bool valid) {
    S* a = gates + (t * N + n) * GH;
    const S* hp = hs + (t * N + n) * H;
    S* hq = hs + (N + t * N + n) * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const S nn = Math<S>::tanh(a[2 * H + j] + b[2 * H + j]), z = a[H + j];
      a[2 * H + j] = nn;
      hq[j] = nn + z * (hp[j] - nn);                                // h_t = (1 - z) h~_t + z h_{t-1}
    }
    if (!valid) hold(hq, hp, H);
  });
}

template <typename S>
void gru_backward(Ctx<S>& c, int64_t t) {
  const S* dy = c.dy_at(t);
  const int64_t N = c.N, H = c.H, GH = c.GH;
  const S* gates = Ctx<S>::ptr(c.gates);
  const S* hs = Ctx<S>::ptr(c.hs);
  S* dG = Ctx<S>::ptr(c.dG);
  S* aux = Ctx<S>::ptr(c.aux);
  S* dh = Ctx<S>::ptr(c.dh);
  S* drh = Ctx<S>::ptr(c.scratch_h);
  for_rows(c, t, [&](int64_t n, bool valid) {
    const S* a = gates + (t * N + n) * GH;
    S* g = dG + (t * N + n) * GH;
    const S* hp = hs + (t * N + n) * H;
    const S* y = dy + n * H;
    S* q = aux + (t * N + n) * H;
    S* d_h = dh + n * H;
    if (!valid) return pass_back(g, GH, d_h, y, H, q, H);
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const S dn = d_h[j] + y[j];
      const S r = a[j], z = a[H + j], nn = a[2 * H + j];
      g[H + j] = dn * (hp[j] - nn) * z * (S(1) - z);                // da_z
      g[2 * H + j] = dn * (S(1) - z) * (S(1) - nn * nn);            // da_n
      q[j] = r * hp[j];                                             // r*h for dW_n after the loop
      d_h[j] = dn * z;
    }
  });
  at::Tensor g_t = c.dG.select(0, t);
  c.bw[1].run(c.scratch_h, g_t.narrow(1, 2 * H, H), false);  // d(r*h) = da_n W_n^T
  for_rows(c, t, [&](int64_t n, bool) {
    const S* a = gates + (t * N + n) * GH;
    S* g = dG + (t * N + n) * GH;
    const S* hp = hs + (t * N + n) * H;
    const S* e = drh + n * H;
    S* d_h = dh + n * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const S r = a[j];
      g[j] = e[j] * hp[j] * r * (S(1) - r);                         // da_r = d(r h) h_{t-1} σ'
      d_h[j] += e[j] * r;
    }
  });
  c.bw[0].run(c.dh, g_t.narrow(1, 0, 2 * H), true);  // += [da_r da_z] W_rz^T
}

// ---------------------------------------------------------------------------------- GRU (PyTorch form)
template <typename S>
void gru_reset_after_forward(Ctx<S>& c, int64_t t) {
  c.fw[0].run(c.scratch, c.hs.select(0, t), false);             // h_{t-1} W, all three blocks
  const int64_t N = c.N, H = c.H, GH = c.GH;
  S* gates = Ctx<S>::ptr(c.gates);
  S* hs = Ctx<S>::ptr(c.hs);
  S* hw_n = Ctx<S>::ptr(c.hw_n);
  const S* gh = Ctx<S>::ptr(c.scratch);
  const S* b_hn = c.b_hn;
  const S* b = c.bias;
  for_rows(c, t, [&](int64_t n, bool valid) {
    S* a = gates + (t * N + n) * GH;
    const S* w = gh + n * GH;
    const S* hp = hs + (t * N + n) * H;
    S* hq = hs + (N + t * N + n) * H;
    S* v = hw_n + (t * N + n) * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const S r = Math<S>::sigmoid(a[j] + b[j] + w[j]), z = Math<S>::sigmoid(a[H + j] + b[H + j] + w[H + j]);
      const S hw = w[2 * H + j] + b_hn[j];                          // h_{t-1} W_n + b_hn
      const S nn = Math<S>::tanh(a[2 * H + j] + b[2 * H + j] + r * hw);
      a[j] = r, a[H + j] = z, a[2 * H + j] = nn;
      v[j] = hw;
      hq[j] = nn + z * (hp[j] - nn);
    }
    if (!valid) hold(hq, hp, H);
  });
}

template <typename S>
void gru_reset_after_backward(Ctx<S>& c, int64_t t) {
  const S* dy = c.dy_at(t);
  const int64_t N = c.N, H = c.H, GH = c.GH;
  const S* gates = Ctx<S>::ptr(c.gates);
  const S* hs = Ctx<S>::ptr(c.hs);
  const S* hw_n = Ctx<S>::ptr(c.hw_n);
  S* dG = Ctx<S>::ptr(c.dG);
  S* aux = Ctx<S>::ptr(c.aux);
  S* dgh = Ctx<S>::ptr(c.scratch);
  S* dh = Ctx<S>::ptr(c.dh);
  for_rows(c, t, [&](int64_t n, bool valid) {
    const S* a = gates + (t * N + n) * GH;
    S* g = dG + (t * N + n) * GH;
    S* e = dgh + n * GH;
    const S* hp = hs + (t * N + n) * H;
    const S* v = hw_n + (t * N + n) * H;
    const S* y = dy + n * H;
    S* q = aux + (t * N + n) * H;
    S* d_h = dh + n * H;
    if (!valid) {
      std::fill(e, e + GH, S(0));
      return pass_back(g, GH, d_h, y, H, q, H);
    }
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const S dn = d_h[j] + y[j];
      const S r = a[j], z = a[H + j], nn = a[2 * H + j];
      const S da_n = dn * (S(1) - z) * (S(1) - nn * nn);
      const S da_z = dn * (hp[j] - nn) * z * (S(1) - z);
      const S da_r = da_n * v[j] * r * (S(1) - r);
      const S dhw = da_n * r;                                       // d(h W_n + b_hn)
      g[j] = da_r, g[H + j] = da_z, g[2 * H + j] = da_n;
      e[j] = da_r, e[H + j] = da_z, e[2 * H + j] = dhw;
      q[j] = dhw;
      d_h[j] = dn * z;
    }
  });
  c.bw[0].run(c.dh, c.scratch, true);                             // += dG^h_t W^T
}

}  // namespace

Backend& forced_backend() {
  static Backend backend = Backend::kAuto;
  return backend;
}
Thresholds& thresholds() {
  static Thresholds t;
  return t;
}

template <typename S>
Step<S> forward_step(Mode mode) {
  switch (mode) {
    case Mode::kRnnTanh: return rnn_forward<S, false>;
    case Mode::kRnnRelu: return rnn_forward<S, true>;
    case Mode::kLstm: return lstm_forward<S>;
    case Mode::kGru: return gru_forward<S>;
    case Mode::kGruResetAfter: return gru_reset_after_forward<S>;
  }
  TORCH_CHECK(false, "rnnkit: unknown mode");
}

template <typename S>
Step<S> backward_step(Mode mode) {
  switch (mode) {
    case Mode::kRnnTanh: return rnn_backward<S, false>;
    case Mode::kRnnRelu: return rnn_backward<S, true>;
    case Mode::kLstm: return lstm_backward<S>;
    case Mode::kGru: return gru_backward<S>;
    case Mode::kGruResetAfter: return gru_reset_after_backward<S>;
  }
  TORCH_CHECK(false, "rnnkit: unknown mode");
}

template Step<float> forward_step<float>(Mode);
template Step<double> forward_step<double>(Mode);
template Step<float> backward_step<float>(Mode);
template Step<double> backward_step<double>(Mode);

}  // namespace rnnkit
