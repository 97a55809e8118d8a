// rnnkit fused engine: the pieces every cell's step shares (cells.cpp says how a step is built; buffers: fused.h).
#pragma once

#include "fused.h"

namespace rnnkit {
namespace steps {
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

// ------------------------------------------------------------------------------------------ layer norm
// LN(v) = (v - mean(v)) / sqrt(var(v) + eps) * g + b over each block of H units (rnnkit.cells.extras's
// layer_norm_blocks, the same two-pass mean and variance).
constexpr double kLnEps = 1e-5;

// One block: the normalised values into xh; returns 1 / sigma.
template <typename S>
RNNKIT_INLINE S ln_normalise(const S* v, S* xh, int64_t H) {
  S sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < H; ++j) sum += v[j];
  const S mu = sum / S(H);
  S sq = 0;
#pragma omp simd reduction(+ : sq)
  for (int64_t j = 0; j < H; ++j) sq += (v[j] - mu) * (v[j] - mu);
  const S rstd = S(1) / std::sqrt(sq / S(H) + S(kLnEps));
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) xh[j] = (v[j] - mu) * rstd;
  return rstd;
}

// One block's gain and bias: out (+)= xh g + b (kAdd: added; else written, out may be xh). The gate rebuild adds
// a saved block with it, so that it gets the forward's bits.
template <typename S, bool kAdd>
RNNKIT_INLINE void ln_affine(const S* xh, S* out, const S* g, const S* b, int64_t H) {
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const S y = xh[j] * g[j] + b[j];
    out[j] = kAdd ? out[j] + y : y;
  }
}

// One row of `blocks` blocks: out (+)= LN(v) (kAdd: added; else written, out may be v), saving the normalised
// values in xh and 1 / sigma in rstd.
template <typename S, bool kAdd>
RNNKIT_INLINE void ln_row(const S* v, S* out, const S* g, const S* b, S* xh, S* rstd, int64_t blocks, int64_t H) {
  for (int64_t k = 0; k < blocks; ++k) {
    rstd[k] = ln_normalise(v + k * H, xh + k * H, H);
    ln_affine<S, kAdd>(xh + k * H, out + k * H, g + k * H, b + k * H, H);
  }
}

// Its backward: from dy (the gradient w.r.t. LN's output) dv = (dy g - mean(dy g) - xh mean(dy g xh)) / sigma,
// block by block.
template <typename S>
RNNKIT_INLINE void ln_row_backward(const S* dy, const S* xh, const S* g, const S* rstd, S* dv, int64_t blocks,
                                   int64_t H) {
  for (int64_t k = 0; k < blocks; ++k) {
    const S* d = dy + k * H;
    const S* x = xh + k * H;
    const S* gk = g + k * H;
    S s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
    for (int64_t j = 0; j < H; ++j) s1 += d[j] * gk[j], s2 += d[j] * gk[j] * x[j];
    s1 /= S(H), s2 /= S(H);
    const S r = rstd[k];
    S* o = dv + k * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) o[j] = r * (d[j] * gk[j] - s1 - x[j] * s2);
  }
}

// The gate rebuild's first part: window row r's saved LN(h W) blocks [k0, k1), gain and bias applied, added to its
// gates (which hold LN(x_t U)); returns the row's gates.
template <typename S>
RNNKIT_INLINE S* add_saved_ln(const Ctx<S>& c, int64_t r, int64_t k0, int64_t k1) {
  const int64_t at = k0 * c.H;                                    // (the blocks are contiguous: one pass)
  S* a = Ctx<S>::ptr(c.gates) + r * c.GH;
  ln_affine<S, true>(Ctx<S>::ptr(c.norm) + r * c.GH + at, a + at, c.ln_g + at, c.ln_b + at, (k1 - k0) * c.H);
  return a;
}

// LN(x_t U) of row n at step t in place in its row `a` of gates (of hs for the RNN), which holds the raw x_t U; x^
// and 1 / sigma go to norm_row's and rstd_row's input rows where there are any (norm_in: the backward's recomputed
// window, rebuild_row; norm_kept: the kept steps), else nowhere. The steps call it (in_step) where a step's rows
// split over threads, so that the row is in cache, else engine.cpp's input_projection does, in one pass over the
// window's rows split over threads.
template <typename S>
RNNKIT_INLINE void ln_input_row(const Ctx<S>& c, int64_t t, int64_t n, S* a, bool in_step = true) {
  if (in_step != c.ln_in_step) return;
  S rstd[4];                                                     // (not kept: G <= 4 blocks)
  const bool keep = t < c.kept || c.norm_in.defined();
  ln_row<S, false>(a, a, c.ln_ig, c.ln_ib, keep ? c.norm_row(t, n, true) : a, keep ? c.rstd_row(t, n, true) : rstd,
                   c.G, c.H);
}

// The backward's row n at step t under layer norm without a checkpoint window (engine.cpp's rebuild path): LN(x_t U)
// as the forward made it, from the raw x_t U in the window's gates or, in a kept step, from the forward's normalised
// values; then the gates (rebuild_gates). At the top of the row's step (in_step) so that they are made in cache
// where they are used, or in input_projection's pass.
template <typename S>
RNNKIT_INLINE void rebuild_row(Ctx<S>& c, int64_t t, int64_t n, bool in_step = true) {
  if (!c.raw_gates || in_step != c.ln_in_step) return;
  S* a = Ctx<S>::ptr(c.gates) + (t * c.N + n) * c.GH;
  if (t < c.kept) ln_affine<S, false>(c.norm_row(t, n, true), a, c.ln_ig, c.ln_ib, c.GH);   // (the G blocks at once)
  else ln_input_row(c, t, n, a, in_step);
  if (c.rebuild) c.rebuild(c, t * c.N + n);
}

// Layer norm's input part of row n's backward at step t, while its gate gradients g (GH) are in cache: the gradient
// w.r.t. the raw x_t U into dX, and g's sums for the gains and biases of LN(x_t U) and (but for the PyTorch GRU,
// whose recurrent LN takes another gradient) LN(h W)'s gain into sequence n's accumulators. Each step gives a
// sequence's row to one thread and the steps come in order, so the sums have the same bits with any number of
// threads. (Done here rather than in a pass over the chunk: that pass read dG and LN(h W) back from memory.) With
// side work (c.side: a step's rows on one thread) the other thread does it a step later instead (side_rows).
template <typename S>
RNNKIT_INLINE void ln_input_backward(const Ctx<S>& c, int64_t t, int64_t n, const S* g, bool side = false) {
  if (side != bool(c.side)) return;
  const int64_t GH = c.GH;
  const S* x = c.norm_row(t, n, true);
  ln_row_backward(g, x, c.ln_ig, c.rstd_row(t, n, true), Ctx<S>::ptr(c.dX) + (t * c.N + n) * GH, c.G, c.H);
  S* gin = Ctx<S>::ptr(c.ln_sums) + n * 3 * GH;
  S* bias = gin + GH;
#pragma omp simd
  for (int64_t j = 0; j < GH; ++j) gin[j] += g[j] * x[j], bias[j] += g[j];
  if (c.mode == Mode::kGruResetAfter) return;
  const S* xr = c.norm_row(t, n);
  S* grec = bias + GH;
#pragma omp simd
  for (int64_t j = 0; j < GH; ++j) grec[j] += g[j] * xr[j];
}

// The backward's side work under layer norm where a step's rows run on one thread (few sequences), done by the
// other thread while step t's rows run (for_rows): the rebuild of step t-1's rows (LN(x_t U) and the gates:
// rebuild_row), which step t-1 reads, and the input LN's backward of step t+1 (ln_input_backward), which nothing
// in the recurrence waits for. Every value is the one the steps would make, and each sequence's sums still come
// in step order: the same bits. The window's steps run from W-1 down; t = W (before them: the rebuild of step W-1)
// and t = -1 (after them: the input LN's backward of step 0) do the two ends.
template <typename S>
void side_rows(Ctx<S>& c, int64_t t, int64_t W) {
  const S* dG = Ctx<S>::ptr(c.dG);
  for (int64_t n = 0; n < c.N; ++n) {
    if (t + 1 < W) ln_input_backward(c, t + 1, n, dG + ((t + 1) * c.N + n) * c.GH, true);
    if (t >= 1) rebuild_row(c, t - 1, n, false);
  }
}

// The recurrent product of step t under layer norm: into ln_buf, to be normalised by the rows (`part`: Cho's GRU's
// W_rz (0) or W_n (1) product, ln_buf's (N, 2H) and (N, H) views).
template <typename S>
S* ln_product(Ctx<S>& c, const Product<S>& product, const at::Tensor& in, int part = 0) {
  const at::Tensor& out = c.ln_out[part];
  product.run(out, in, false);
  return Ctx<S>::ptr(out);
}

}  // namespace steps

// Each file's steps, forward or backward, and gate rebuilds (cells_rnn_lstm.cpp, cells_gru.cpp); nullptr for a
// mode it lacks.
template <typename S, bool kZone, bool kLN> Step<S> rnn_lstm_step(Mode mode, bool backward);
template <typename S, bool kZone, bool kLN> Step<S> gru_step(Mode mode, bool backward);
template <typename S> Row<S> rnn_lstm_rebuild(Mode mode, bool zoned);
template <typename S> Row<S> gru_rebuild(Mode mode);

}  // namespace rnnkit
