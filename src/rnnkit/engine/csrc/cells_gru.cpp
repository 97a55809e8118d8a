// rnnkit fused engine: the GRUs (Cho et al.'s and PyTorch's form), one time step forward and backward (see cells.cpp, step_common.h).
#include <vector>

#include "step_common.h"

namespace rnnkit {
namespace {
using namespace steps;

// ------------------------------------------------------------------------------------ GRU (Cho et al.)
// [a_r a_z] + b -> [r z], and a_n + b -> n~ = tanh(.), in place, unit j.
template <typename S>
RNNKIT_INLINE void gru_rz(S* a, const S* b, int64_t H, int64_t j) {
  a[j] = Math<S>::sigmoid(a[j] + b[j]), a[H + j] = Math<S>::sigmoid(a[H + j] + b[H + j]);
}
template <typename S>
RNNKIT_INLINE void gru_candidate(S* a, const S* b, int64_t H, int64_t j) {
  a[2 * H + j] = Math<S>::tanh(a[2 * H + j] + b[2 * H + j]);
}

template <typename S, bool kZone, bool kLN>
void gru_forward(Ctx<S>& c, int64_t t) {
  const int64_t N = c.N, H = c.H, GH = c.GH;
  at::Tensor a_t = c.gates.select(0, t);
  const at::Tensor h_in = recurrent_input(c, t);                   // h_{t-1} [* m]
  const S* hw = nullptr;                                           // layer norm: h W_rz, normalised below
  if constexpr (kLN) hw = ln_product(c, c.fw[0], h_in);
  else c.fw[0].run(a_t.narrow(1, 0, 2 * H), h_in, true);  // += h W_rz
  S* gates = Ctx<S>::ptr(c.gates);
  S* hs = Ctx<S>::ptr(c.hs);
  const S* hin = h_in.data_ptr<S>();
  S* rh = Ctx<S>::ptr(c.scratch_h);
  const S* b = c.bias;
  for_rows(c, t, [&](int64_t n, bool) {
    S* a = gates + (t * N + n) * GH;
    const S* hp = hin + n * H;
    S* q = rh + n * H;
    if constexpr (kLN) {                                            // LN(x_t U) + LN(h W_r), LN(h W_z)
      ln_input_row(c, t, n, a);
      ln_row<S, true>(hw + n * 2 * H, a, c.ln_g, c.ln_b, c.norm_row(t, n), c.rstd_row(t, n), 2, H);
    }
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      gru_rz(a, b, H, j);                                           // r, z = σ(a + b)
      q[j] = a[j] * hp[j];                                          // r_t * h_{t-1}
    }
  });
  if constexpr (kLN) hw = ln_product(c, c.fw[1], c.scratch_h, 1);   // (r*h) W_n
  else c.fw[1].run(a_t.narrow(1, 2 * H, H), c.scratch_h, true);  // += (r*h) W_n
  for_rows(c, t, [&](int64_t n, bool valid) {
    S* a = gates + (t * N + n) * GH;
    const S* hp = hs + (t * N + n) * H;
    S* hq = hs + (N + t * N + n) * H;
    if constexpr (kLN)                                              // + LN((r*h) W_n)
      ln_row<S, true>(hw + n * H, a + 2 * H, c.ln_g + 2 * H, c.ln_b + 2 * H, c.norm_row(t, n) + 2 * H,
                      c.rstd_row(t, n) + 2, 1, H);
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      gru_candidate(a, b, H, j);                                    // h~_t = tanh(a_n + b_n)
      const S nn = a[2 * H + j], z = a[H + j];
      hq[j] = nn + z * (hp[j] - nn);                                // h_t = (1 - z) h~_t + z h_{t-1}
    }
    if constexpr (kZone) zone(hq, hp, c.zone_row(c.zh, t, n), H);
    if (!valid) hold(hq, hp, H);
  });
}

template <typename S, bool kZone, bool kLN>
void gru_backward(Ctx<S>& c, int64_t t) {
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
    if constexpr (kLN) rebuild_row(c, t, n);
    const S* a = gates + (t * N + n) * GH;
    S* g = dG + (t * N + n) * GH;
    const S* hp = hs + (t * N + n) * H;
    const S* hi = hin + n * H;
    const S* y = dy + n * H;
    S* q = aux + (t * N + n) * H;
    S* d_h = dh + n * H;
    if (!valid) {
      if constexpr (kLN) c.zero_dA_row(t, n);
      return pass_back(g, GH, d_h, y, H, q, H);
    }
    const S* zo = c.zone_row(c.zh, t, n);
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
    if constexpr (kLN)                                              // d((r*h) W_n) through LN
      ln_row_backward(g + 2 * H, c.norm_row(t, n) + 2 * H, c.ln_g + 2 * H, c.rstd_row(t, n) + 2,
                      c.dA_row(t, n) + 2 * H, 1, H);
  });
  const at::Tensor dp_t = (kLN ? c.dA : c.dG).select(0, t);        // the products' gradients
  c.bw[1].run(c.scratch_h, dp_t.narrow(1, 2 * H, H), false);  // d(r*h) = da_n W_n^T
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
    } else {
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const S r = a[j];
        g[j] = e[j] * hi[j] * r * (S(1) - r);                       // da_r = d(r h) h_{t-1} σ'
        d_h[j] += e[j] * r;
      }
    }
    if constexpr (kLN) {                                            // d(h W_rz) and d(x_t U) through LN
      ln_row_backward(g, c.norm_row(t, n), c.ln_g, c.rstd_row(t, n), c.dA_row(t, n), 2, H);
      ln_input_backward(c, t, n, g);                                // (zeros past the end: g is)
    }
  });
  if (!dropped) return c.bw[0].run(c.dh, dp_t.narrow(1, 0, 2 * H), true);  // += [da_r da_z] W_rz^T
  c.bw[0].run(c.scratch_h, dp_t.narrow(1, 0, 2 * H), true);       // d(h m) = d(r h m) r + [da_r da_z] W_rz^T
  S* d = Ctx<S>::ptr(c.dh);
  const S* m = c.h_mask;
  for (int64_t k = 0; k < N * H; ++k) d[k] += drh[k] * m[k];
}

// The activated gates of window row r from LN(x_t U) in gates and the saved LN(h W_rz), LN((r*h) W_n).
template <typename S>
void cho_gru_rebuild(Ctx<S>& c, int64_t r) {
  const int64_t H = c.H;
  S* a = add_saved_ln(c, r, 0, 2);
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) gru_rz(a, c.bias, H, j);
  add_saved_ln(c, r, 2, 3);
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) gru_candidate(a, c.bias, H, j);
}

// ---------------------------------------------------------------------------------- GRU (PyTorch form)
// r, z = σ(a + b + w), n~ = tanh(a_n + b_n + r (w_n + b_hn)) in place (w: h W, or LN(h W)), unit j; returns
// w_n + b_hn.
template <typename S>
RNNKIT_INLINE S gru_reset_after_gates(S* a, const S* b, const S* w, const S* b_hn, int64_t H, int64_t j) {
  const S r = Math<S>::sigmoid(a[j] + b[j] + w[j]), z = Math<S>::sigmoid(a[H + j] + b[H + j] + w[H + j]);
  const S hw = w[2 * H + j] + b_hn[j];                              // h_{t-1} W_n + b_hn
  a[j] = r, a[H + j] = z, a[2 * H + j] = Math<S>::tanh(a[2 * H + j] + b[2 * H + j] + r * hw);
  return hw;
}

template <typename S, bool kZone, bool kLN>
void gru_reset_after_forward(Ctx<S>& c, int64_t t) {
  c.fw[0].run(c.scratch, recurrent_input(c, t), false);         // h_{t-1} [* m] W, all three blocks
  const int64_t N = c.N, H = c.H, GH = c.GH;
  S* gates = Ctx<S>::ptr(c.gates);
  S* hs = Ctx<S>::ptr(c.hs);
  S* hw_n = Ctx<S>::ptr(c.hw_n);
  S* gh = Ctx<S>::ptr(c.scratch);
  const S* b_hn = c.b_hn;
  const S* b = c.bias;
  for_rows(c, t, [&](int64_t n, bool valid) {
    S* a = gates + (t * N + n) * GH;
    S* w = gh + n * GH;
    const S* hp = hs + (t * N + n) * H;
    S* hq = hs + (N + t * N + n) * H;
    S* v = hw_n + (t * N + n) * H;
    if constexpr (kLN) {                                            // LN(x_t U), and h W := LN(h W), in place
      ln_input_row(c, t, n, a);
      ln_row<S, false>(w, w, c.ln_g, c.ln_b, c.norm_row(t, n), c.rstd_row(t, n), 3, H);
    }
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      v[j] = gru_reset_after_gates(a, b, w, b_hn, H, j);
      const S nn = a[2 * H + j], z = a[H + j];
      hq[j] = nn + z * (hp[j] - nn);
    }
    if constexpr (kZone) zone(hq, hp, c.zone_row(c.zh, t, n), H);
    if (!valid) hold(hq, hp, H);
  });
}

template <typename S, bool kZone, bool kLN>
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
    if constexpr (kLN) rebuild_row(c, t, n);
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
      pass_back(g, GH, d_h, y, H, q, H);
      if constexpr (kLN) c.zero_dA_row(t, n), ln_input_backward(c, t, n, g);
      return;
    }
    const S* zo = c.zone_row(c.zh, t, n);
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
    if constexpr (kLN) {                                            // d(h W) and d(x_t U) through LN
      ln_row_backward(e, c.norm_row(t, n), c.ln_g, c.rstd_row(t, n), c.dA_row(t, n), 3, H);
      ln_input_backward(c, t, n, g);
    }
  });
  add_recurrent_grad(c, c.bw[0], kLN ? c.dA.select(0, t) : c.scratch);  // += dG^h_t W^T [* m]
}

// The activated gates of window row r from LN(x_t U) in gates and the saved LN(h W) (h W_n + b_hn is saved in
// hw_n). LN(h W) goes to a row of its own, one per thread, kept between rows (the steps call this once a row):
// r multiplies its n block before it meets the gates.
template <typename S>
void gru_reset_after_rebuild(Ctx<S>& c, int64_t r) {
  const int64_t H = c.H;
  thread_local std::vector<S> w;
  w.resize(3 * H);
  const S* xh = Ctx<S>::ptr(c.norm) + r * c.GH;
  for (int64_t k = 0; k < 3; ++k) ln_affine<S, false>(xh + k * H, &w[k * H], c.ln_g + k * H, c.ln_b + k * H, H);
  S* a = Ctx<S>::ptr(c.gates) + r * c.GH;
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) gru_reset_after_gates(a, c.bias, w.data(), c.b_hn, H, j);
}

}  // namespace

template <typename S>
Row<S> gru_rebuild(Mode mode) {
  switch (mode) {
    case Mode::kGru: return cho_gru_rebuild<S>;
    case Mode::kGruResetAfter: return gru_reset_after_rebuild<S>;
    default: return nullptr;
  }
}
template Row<float> gru_rebuild<float>(Mode);
template Row<double> gru_rebuild<double>(Mode);

template <typename S, bool kZone, bool kLN>
Step<S> gru_step(Mode mode, bool backward) {
  switch (mode) {
    case Mode::kGru: return backward ? gru_backward<S, kZone, kLN> : gru_forward<S, kZone, kLN>;
    case Mode::kGruResetAfter:
      return backward ? gru_reset_after_backward<S, kZone, kLN> : gru_reset_after_forward<S, kZone, kLN>;
    default: return nullptr;
  }
}

#define RNNKIT_STEPS(S)                                                                                      \
  template Step<S> gru_step<S, false, false>(Mode, bool);                                                    \
  template Step<S> gru_step<S, true, false>(Mode, bool);                                                     \
  template Step<S> gru_step<S, false, true>(Mode, bool);                                                     \
  template Step<S> gru_step<S, true, true>(Mode, bool);
RNNKIT_STEPS(float)
RNNKIT_STEPS(double)
#undef RNNKIT_STEPS

}  // namespace rnnkit
