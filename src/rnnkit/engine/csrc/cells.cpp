// rnnkit fused engine: one time step of each recurrence, forward and backward (buffers: see fused.h).
//
// Every step is: the recurrent matmul(s) (gemm.h), then ONE pass over the step's N x H elements (two for
// Cho's GRU, whose reset gate multiplies h before its second matmul) that applies the gates, the state
// update and the mask. The equations, the gate order and what is saved are those of engine/bptt.py, and with
// recurrent dropout and zoneout those of engine/masked.py:
//   recurrent dropout   h_{t-1} * m goes into the recurrent product (recurrent_input), and the product's
//                       gradient is multiplied by m on its way to dh_{t-1} (add_recurrent_grad)
//   zoneout (kZone)     h_t = z h_{t-1} + (1 - z) h^_t after the row's update (C_t likewise); backward:
//                       dh^_t = dh_t (1 - z) into the cell, dh_t z straight to dh_{t-1}
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

// Zoneout of one row: v = z * prev + (1 - z) * v (z = 1 keeps prev exactly).
template <typename S>
RNNKIT_INLINE void zone(S* v, const S* prev, const S* z, int64_t H) {
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) v[j] = z[j] * prev[j] + (S(1) - z[j]) * v[j];
}

// The recurrent product's input at step t: h_{t-1}, or h_{t-1} * m into hd under recurrent dropout.
template <typename S>
at::Tensor recurrent_input(Ctx<S>& c, int64_t t) {
  at::Tensor h = c.hs.select(0, t);
  if (c.h_mask == nullptr) return h;
  const S* hp = h.data_ptr<S>();
  const S* m = c.h_mask;
  S* d = Ctx<S>::ptr(c.hd);
  const int64_t size = c.N * c.P;
#pragma omp simd
  for (int64_t k = 0; k < size; ++k) d[k] = hp[k] * m[k];
  return c.hd;
}

// dh_{t-1} += (dG W^T) * m: the product lands in hd first under recurrent dropout.
template <typename S>
void add_recurrent_grad(Ctx<S>& c, const Product<S>& product, const at::Tensor& dg) {
  if (c.h_mask == nullptr) return product.run(c.dh, dg, true);
  product.run(c.hd, dg, false);
  S* dh = Ctx<S>::ptr(c.dh);
  const S* e = Ctx<S>::ptr(c.hd);
  const S* m = c.h_mask;
  const int64_t size = c.N * c.P;
#pragma omp simd
  for (int64_t k = 0; k < size; ++k) dh[k] += e[k] * m[k];
}

// The backward's split of dh_t = d (carried + output) under zoneout: d (1 - z) goes into the cell (returned), d z
// straight to dh_{t-1} (left in d_h, to which the cell's own part is added).
template <typename S>
RNNKIT_INLINE S unzone(S* d_h, const S* y, const S* z, int64_t j) {
  const S d = d_h[j] + y[j];
  d_h[j] = d * z[j];
  return d * (S(1) - z[j]);
}

// ------------------------------------------------------------------------------------------------ RNN
template <typename S, bool kRelu, bool kZone>
void rnn_forward(Ctx<S>& c, int64_t t) {
  c.fw[0].run(c.hs.select(0, t + 1), recurrent_input(c, t), true);  // x_t U + (h_{t-1} [* m]) W
  S* hs = Ctx<S>::ptr(c.hs);
  S* act = Ctx<S>::ptr(c.gates);                                  // zoneout: f(a_t) before it
  const S* zh = kZone ? c.zh.at(t) : nullptr;
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
    if constexpr (kZone) {
      if (act) std::memcpy(act + (t * N + n) * H, a, H * sizeof(S));
      zone(a, hp, c.zone_row(zh, n), H);                            // h_t = z h_{t-1} + (1 - z) f(a_t)
    }
    if (!valid) hold(a, hp, H);
  });
}

template <typename S, bool kRelu, bool kZone>
void rnn_backward(Ctx<S>& c, int64_t t) {
  const S* dy = c.dy_at(t);
  const S* hs = Ctx<S>::ptr(c.hs);
  const S* act = Ctx<S>::ptr(c.gates);
  const S* zh = kZone ? c.zh.at(t) : nullptr;
  S* dG = Ctx<S>::ptr(c.dG);
  S* dh = Ctx<S>::ptr(c.dh);
  const int64_t N = c.N, H = c.H;
  for_rows(c, t, [&](int64_t n, bool valid) {
    const S* h = (kZone && act ? act : hs + N * H) + (t * N + n) * H;   // f(a_t)
    const S* y = dy + n * H;
    S* g = dG + (t * N + n) * H;
    S* d_h = dh + n * H;
    if (!valid) return pass_back(g, H, d_h, y, H);
    const S* z = c.zone_row(zh, n);
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      S d;
      if constexpr (kZone) d = unzone(d_h, y, z, j); else d = d_h[j] + y[j], d_h[j] = S(0);
      g[j] = kRelu ? (h[j] > S(0) ? d : S(0)) : d * (S(1) - h[j] * h[j]);  // da_t = dh_t f'(a_t)
    }
  });
  add_recurrent_grad(c, c.bw[0], c.dG.select(0, t));              // dh_{t-1} += da_t W^T [* m]
}

// ----------------------------------------------------------------------------------------------- LSTM
// With a projection (proj_size) the step's o_t * tanh(C_t) goes to cell_out and h_t = (o_t tanh C_t) R is one more
// product; the rows past a sequence's end are held after it. (No zoneout or recurrent dropout with it.)
template <typename S, bool kZone>
void lstm_forward(Ctx<S>& c, int64_t t) {
  c.fw[0].run(c.gates.select(0, t), recurrent_input(c, t), true);  // [a_i a_f a_g a_o] = x_t U + h_{t-1} W (+ b)
  S* gates = Ctx<S>::ptr(c.gates);
  const S* b = c.bias;
  S* hs = Ctx<S>::ptr(c.hs);
  S* cs = Ctx<S>::ptr(c.cs);
  const int64_t N = c.N, H = c.H, P = c.P, NH = N * H;
  S* out = c.projected ? Ctx<S>::ptr(c.cell_out) + t * NH : hs + (t + 1) * N * P;  // rows of H (P == H unprojected)
  const S* zh = kZone ? c.zh.at(t) : nullptr;
  const S* zc = kZone ? c.zc.at(t) : nullptr;
  for_rows(c, t, [&](int64_t n, bool valid) {
    S* a = gates + (t * N + n) * 4 * H;
    const S* cp = cs + (t * N + n) * H;
    const S* hp = hs + (t * N + n) * P;
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
    if constexpr (kZone) {
      zone(cq, cp, c.zone_row(zc, n), H);                           // C_t = z C_{t-1} + (1 - z) C^_t
      zone(hq, hp, c.zone_row(zh, n), H);                           // h_t = z h_{t-1} + (1 - z) h^_t
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

// One unit's gate gradients at one step from dL/d(o_t tanh C_t) = dn, dC_t from above dc and tanh(C_t) = tc;
// returns dC_{t-1} through the step.
template <typename S>
RNNKIT_INLINE S lstm_unit_backward(const S* a, S* g, S cp, S tc, S dc, S dn, int64_t H, int64_t j) {
  const S i = a[j], f = a[H + j], gg = a[2 * H + j], o = a[3 * H + j];
  const S dct = dc + dn * o * (S(1) - tc * tc);                  // dC_t
  g[j] = dct * gg * i * (S(1) - i);                             // da_i = dC_t C~_t σ'
  g[H + j] = dct * cp * f * (S(1) - f);                         // da_f = dC_t C_{t-1} σ'
  g[2 * H + j] = dct * i * (S(1) - gg * gg);                    // da_g = dC_t i_t tanh'
  g[3 * H + j] = dn * tc * o * (S(1) - o);                      // da_o = dh_t tanh(C_t) σ'
  return dct * f;                                               // dC_{t-1}
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

template <typename S, bool kZone>
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
  const S* zh_t = kZone ? c.zh.at(t) : nullptr;
  const S* zc_t = kZone ? c.zc.at(t) : nullptr;
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
      for (int64_t j = 0; j < H; ++j) d_c[j] = lstm_unit_backward(a, g, cp[j], Math<S>::tanh(cq[j]), d_c[j], e[j], H, j);
      return;
    }
    const S* y = dy + n * H;
    S* d_h = dh + n * H;
    if (!valid) return pass_back(g, 4 * H, d_h, y, H);
    if constexpr (kZone) {
      const S* zh = c.zone_row(zh_t, n);
      const S* zc = c.zone_row(zc_t, n);
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const S dn = unzone(d_h, y, zh, j);                         // dh^_t; d_h keeps dh_t z_h
        const S c_hat = a[H + j] * cp[j] + a[j] * a[2 * H + j];      // C^_t = f C_{t-1} + i C~_t, before zoneout
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
  add_recurrent_grad(c, c.bw[0], c.dG.select(0, t));              // dh_{t-1} += dG_t W^T [* m]
}

// ------------------------------------------------------------------------------------ GRU (Cho et al.)
template <typename S, bool kZone>
void gru_forward(Ctx<S>& c, int64_t t) {
  const S* zh = kZone ? c.zh.at(t) : nullptr;
  const int64_t N = c.N, H = c.H, GH = c.GH;
  at::Tensor a_t = c.gates.select(0, t);
  const at::Tensor h_in = recurrent_input(c, t);                   // h_{t-1} [* m]
  c.fw[0].run(a_t.narrow(1, 0, 2 * H), h_in, true);  // += h W_rz
  S* gates = Ctx<S>::ptr(c.gates);
  S* hs = Ctx<S>::ptr(c.hs);
  const S* hin = h_in.data_ptr<S>();
  S* rh = Ctx<S>::ptr(c.scratch_h);
  const S* b = c.bias;
  for_rows(c, t, [&](int64_t n, bool) {
    S* a = gates + (t * N + n) * GH;
    const S* hp = hin + n * H;
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
    if constexpr (kZone) zone(hq, hp, c.zone_row(zh, n), H);
    if (!valid) hold(hq, hp, H);
  });
}

template <typename S, bool kZone>
void gru_backward(Ctx<S>& c, int64_t t) {
  const S* zh = kZone ? c.zh.at(t) : nullptr;
  const S* dy = c.dy_at(t);
  const int64_t N = c.N, H = c.H, GH = c.GH;
  const S* gates = Ctx<S>::ptr(c.gates);
  const S* hs = Ctx<S>::ptr(c.hs);
  const S* hin = Ctx<S>::ptr(recurrent_input(c, t));              // h_{t-1} [* m]
  S* dG = Ctx<S>::ptr(c.dG);
  S* aux = Ctx<S>::ptr(c.aux);
  S* dh = Ctx<S>::ptr(c.dh);
  S* drh = Ctx<S>::ptr(c.scratch_h);
  for_rows(c, t, [&](int64_t n, bool valid) {
    const S* a = gates + (t * N + n) * GH;
    S* g = dG + (t * N + n) * GH;
    const S* hp = hs + (t * N + n) * H;
    const S* hi = hin + n * H;
    const S* y = dy + n * H;
    S* q = aux + (t * N + n) * H;
    S* d_h = dh + n * H;
    if (!valid) return pass_back(g, GH, d_h, y, H, q, H);
    const S* zo = c.zone_row(zh, n);
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      S dn;
      if constexpr (kZone) dn = unzone(d_h, y, zo, j); else dn = d_h[j] + y[j], d_h[j] = S(0);
      const S r = a[j], z = a[H + j], nn = a[2 * H + j];
      g[H + j] = dn * (hp[j] - nn) * z * (S(1) - z);                // da_z
      g[2 * H + j] = dn * (S(1) - z) * (S(1) - nn * nn);            // da_n
      q[j] = r * hi[j];                                             // r*h for dW_n after the loop
      d_h[j] += dn * z;
    }
  });
  at::Tensor g_t = c.dG.select(0, t);
  c.bw[1].run(c.scratch_h, g_t.narrow(1, 2 * H, H), false);  // d(r*h) = da_n W_n^T
  const bool dropped = c.h_mask != nullptr;
  for_rows(c, t, [&](int64_t n, bool) {
    const S* a = gates + (t * N + n) * GH;
    S* g = dG + (t * N + n) * GH;
    const S* hi = hin + n * H;
    S* e = drh + n * H;
    S* d_h = dh + n * H;
    if (dropped) {                                                  // e becomes d(h m), finished below
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) g[j] = e[j] * hi[j] * a[j] * (S(1) - a[j]), e[j] *= a[j];
      return;
    }
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const S r = a[j];
      g[j] = e[j] * hi[j] * r * (S(1) - r);                         // da_r = d(r h) h_{t-1} σ'
      d_h[j] += e[j] * r;
    }
  });
  if (!dropped) return c.bw[0].run(c.dh, g_t.narrow(1, 0, 2 * H), true);  // += [da_r da_z] W_rz^T
  c.bw[0].run(c.scratch_h, g_t.narrow(1, 0, 2 * H), true);        // d(h m) = d(r h m) r + [da_r da_z] W_rz^T
  S* d = Ctx<S>::ptr(c.dh);
  const S* m = c.h_mask;
  for (int64_t k = 0; k < N * H; ++k) d[k] += drh[k] * m[k];
}

// ---------------------------------------------------------------------------------- GRU (PyTorch form)
template <typename S, bool kZone>
void gru_reset_after_forward(Ctx<S>& c, int64_t t) {
  const S* zh = kZone ? c.zh.at(t) : nullptr;
  c.fw[0].run(c.scratch, recurrent_input(c, t), false);         // h_{t-1} [* m] W, all three blocks
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
    if constexpr (kZone) zone(hq, hp, c.zone_row(zh, n), H);
    if (!valid) hold(hq, hp, H);
  });
}

template <typename S, bool kZone>
void gru_reset_after_backward(Ctx<S>& c, int64_t t) {
  const S* zh = kZone ? c.zh.at(t) : nullptr;
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
    const S* zo = c.zone_row(zh, n);
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      S dn;
      if constexpr (kZone) dn = unzone(d_h, y, zo, j); else dn = d_h[j] + y[j], d_h[j] = S(0);
      const S r = a[j], z = a[H + j], nn = a[2 * H + j];
      const S da_n = dn * (S(1) - z) * (S(1) - nn * nn);
      const S da_z = dn * (hp[j] - nn) * z * (S(1) - z);
      const S da_r = da_n * v[j] * r * (S(1) - r);
      const S dhw = da_n * r;                                       // d(h W_n + b_hn)
      g[j] = da_r, g[H + j] = da_z, g[2 * H + j] = da_n;
      e[j] = da_r, e[H + j] = da_z, e[2 * H + j] = dhw;
      q[j] = dhw;
      d_h[j] += dn * z;
    }
  });
  add_recurrent_grad(c, c.bw[0], c.scratch);                      // += dG^h_t W^T [* m]
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

template <typename S, bool kZone>
Step<S> forward_step_of(Mode mode) {
  switch (mode) {
    case Mode::kRnnTanh: return rnn_forward<S, false, kZone>;
    case Mode::kRnnRelu: return rnn_forward<S, true, kZone>;
    case Mode::kLstm: return lstm_forward<S, kZone>;
    case Mode::kGru: return gru_forward<S, kZone>;
    case Mode::kGruResetAfter: return gru_reset_after_forward<S, kZone>;
  }
  TORCH_CHECK(false, "rnnkit: unknown mode");
}

template <typename S, bool kZone>
Step<S> backward_step_of(Mode mode) {
  switch (mode) {
    case Mode::kRnnTanh: return rnn_backward<S, false, kZone>;
    case Mode::kRnnRelu: return rnn_backward<S, true, kZone>;
    case Mode::kLstm: return lstm_backward<S, kZone>;
    case Mode::kGru: return gru_backward<S, kZone>;
    case Mode::kGruResetAfter: return gru_reset_after_backward<S, kZone>;
  }
  TORCH_CHECK(false, "rnnkit: unknown mode");
}

template <typename S>
Step<S> forward_step(Mode mode, bool zoned) {
  return zoned ? forward_step_of<S, true>(mode) : forward_step_of<S, false>(mode);
}

template <typename S>
Step<S> backward_step(Mode mode, bool zoned) {
  return zoned ? backward_step_of<S, true>(mode) : backward_step_of<S, false>(mode);
}

template Step<float> forward_step<float>(Mode, bool);
template Step<double> forward_step<double>(Mode, bool);
template Step<float> backward_step<float>(Mode, bool);
template Step<double> backward_step<double>(Mode, bool);

}  // namespace rnnkit
