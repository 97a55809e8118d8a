// rnnkit fused engine: shared pieces of the compiled time loop (math, row loops, the per-call context).
//
// Shapes: T steps, N sequences, I input features, H hidden units, G gate blocks (1 RNN, 4 LSTM, 3 GRU),
// GH = G*H, P the state's size: H, or the LSTM's proj_size when it projects its state (h_t = (o_t tanh C_t) R,
// Sak et al. 2014, as torch.nn.LSTM). Everything is time-major and row-major; a "row" is one sequence n at one
// step t.
//
// The loop runs over a *window* of W <= T consecutive steps [t0, t0+W). All window tensors are indexed by the
// step t in [0, W) relative to t0 and are either views into the buffers saved for the backward pass or
// window-sized scratch that is reused (no-grad inference, checkpointed forward, recompute in the backward).
//
//   gates  (W, N, GH)   forward: input projection x_t U + b on entry, h W added in place, then overwritten
//                       with the activated gates (i f g o | r z n); backward: read only. The RNN with zoneout:
//                       its activation f(a_t) before zoneout (W, N, H). Under layer norm window scratch in
//                       training too, rebuilt by the backward
//   hs     (W+1, N, P)  hs[0] = state before the window, hs[t+1] written by step t (held past a sequence's end)
//   cs     (W+1, N, H)  LSTM cell states, like hs; undefined otherwise
//   hw_n     (W, N, H)    PyTorch GRU only: h_{t-1} W_n + b_hn (the backward needs it); undefined otherwise
//   mask   (W, N)       bool, true where step t of sequence n is valid; nullptr = all valid
//   h_mask (N, H)       recurrent dropout (Gal & Ghahramani 2016): 0 or 1/(1-p) per sequence and unit, the same at
//                       every step; multiplies h_{t-1} before the recurrent product only; nullptr = none
//   zh, zc (W, N, H)    zoneout (Krueger et al. 2016) of h and of the LSTM's C: h_t = z h_{t-1} + (1 - z) h^_t
//                       (bool in training, true = keep, a byte per unit where floats would take four; p in
//                       evaluation, x's dtype); absent: a row of `zero` stands in. A kZone step's row pass
//                       makes each row's bytes floats as it runs it (ZoneMask::row)
//   hd     (N, H)       forward: h_{t-1} * h_mask, the recurrent product's input; backward: a product's result
//                       before it is multiplied by h_mask
//   cell_out (W, N, H)  projected LSTM only: o_t * tanh(C_t) before the projection R (the backward's dR needs it)
//   dY     (W, N, P)    backward: gradient w.r.t. h_{t+1} from the outputs; any strides
//   d_proj (W, N, P)    backward, projected LSTM: dL/dh_t of the valid rows (zero past the end), for dR
//   dG     (W, N, GH)   backward: gradients w.r.t. the gate pre-activations (separate from gates: the saved
//                       tensors are never written by the backward, so retain_graph and gradcheck work)
//   aux    (W, N, H)    backward, GRUs: Cho's r_t * h_{t-1} / PyTorch's d(h W_n + b_hn), for the weight grads
//   dh, dc (N, P), (N, H) backward: the carried gradients w.r.t. h_{t-1} (C_{t-1}); updated in place
//   scratch (N, GH)     per-step workspace: Cho's r*h (fwd) / d(r*h) (bwd); PyTorch GRU's h W (fwd) and its
//                       recurrent gate gradients (bwd); the layer-normalised LSTM's LN(C^_t) normalised values
//                       (fwd) / dh^_t and dC^_t (bwd)
//   fw, bw              the recurrent products: fw[0] = W^T (P, GH) or Cho's W_rz^T, fw[1] = Cho's W_n^T; bw the
//                       untransposed blocks (views of the contiguous weight_hh; packed copies for MKL)
//   proj_fw, proj_bw    the projected LSTM's products with R^T (H, P) and R (P, H)
//   bias   (GH,)        the biases folded where additive (b_ih + b_hh; the PyTorch GRU's n block: b_in), zeros
//                       without biases; the gate passes add it to x_t U (so the projection stays a plain
//                       matmul: no bias copy before it and no read of its output inside it)
//   b_hn   (H,)         PyTorch GRU only: b_hn (zeros without biases); nullptr otherwise
// Layer norm (Ba et al. 2016; the cells' LN of rnnkit.cells.extras, per gate block of H units, eps kLnEps): the
// window's input projection x_t U (ln_input_row), the recurrent product(s) h_{t-1} W (Cho's GRU: h W_rz, then
// (r*h) W_n) and the LSTM's C^_t, each inside the step, row by row:
//   ln_ig, ln_ib (GH,)   the input projection's gains and biases; nullptr = no layer norm
//   ln_g, ln_b (GH,)     the recurrent product's
//   lnc_g, lnc_b (H,)    the LSTM's C^_t
//   norm_in (W, N, GH)  backward: the normalised values (v - mean) / sigma of the recomputed x_t U, and rstd_in
//                       (W, N, G) 1 / sigma of each block (the forward normalises x_t U in place, keeping neither...
//   norm_kept, rstd_kept (kept, N, GH), (kept, N, G) ... but for the window's first `kept` steps, whose values it
//                       keeps here, views of its outputs' rows from T on, and which the backward reads there
//   norm   (W, N, GH)   the normalised values of h W
//   rstd   (W, N, G)    1 / sigma of each of their blocks
//   Training saves norm and rstd, not the gates: the backward recomputes a chunk's x_t U (one matmul), and each
//   row's step renormalises it and rebuilds the row's gates from it and norm (rebuild_row, rebuild_gates) before
//   it uses them; the LSTM's row remakes C^_t's normalised values from the saved C_t (with zoneout, from the
//   rebuilt gates and C_{t-1}: lstm_cell_state) with the forward's own expressions. So a step keeps about what
//   the plain cell keeps (the gates' GH a row become LN(h W)'s GH). Memory for time: the forward also keeps
//   LN(x_t U) for the sequence's first steps (engine.cpp's `kept`; ops.py says how many), whose x_t U the backward
//   neither recomputes nor renormalises. Where a step's rows run on one thread (few sequences), the backward gives
//   the other the rows' rebuild a step ahead and the input LN's backward a step behind (step_common.h, side_rows).
//   ln_buf (N, GH)      forward: the raw recurrent product before it is normalised
//   dA     (W, N, GH)   backward: the gradient w.r.t. the raw recurrent product (what dW and dh_{t-1} take)
//   dlnc   (W, N, H)    backward, LSTM: the gradient w.r.t. LN(C^_t)'s output (for its gain and bias), and
//   c_hat  (W, N, H)    C^_t's normalised values, remade by the rows (the forward's are per-row scratch)
//   dX     (W, N, GH)   backward: the gradient w.r.t. the raw x_t U (what dx and dU take), made in the steps
//   ln_sums (N, 3 GH)   backward: per sequence, the chunk's sums of dG x_in, dG and dG x_rec (the input
//                       LN's gain and bias, the recurrent LN's gain; ln_input_backward)
#pragma once

#include <functional>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "gemm.h"

namespace rnnkit {

enum class Mode { kRnnTanh, kRnnRelu, kLstm, kGru, kGruResetAfter };

// ----------------------------------------------------------------------------------------------- math
// float: branch-free Cephes-style exp/tanh that the compiler vectorizes inside `omp simd` loops (about 1-2 ulp;
// needs -fno-trapping-math, else gcc won't if-convert the selects; rounding by adding 1.5*2^23, not floor(),
// so that it vectorizes without SSE4.1);
// double (gradcheck, reference tests): the C library, exact to the last bit or so.
RNNKIT_INLINE float exp_approx(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
  const float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(x / ln2): x = k ln2 + r
  float r = x - k * 0.693359375f;
  r = r - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;       // 2^k
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

template <typename S> struct Math;

template <> struct Math<float> {
  static RNNKIT_INLINE float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }
  static RNNKIT_INLINE float tanh(float x) {
    const float a = std::fabs(x);
    const float big = 1.0f - 2.0f / (exp_approx(2.0f * a) + 1.0f);
    const float z = x * x;                                            // |x| < 0.625: odd polynomial
    const float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z
                          + 1.33314422036e-1f) * z - 3.33332819422e-1f) * z * a + a;
    const float t = a < 0.625f ? small : big;
    return x < 0.0f ? -t : t;
  }
};

template <> struct Math<double> {
  static RNNKIT_INLINE double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
  static RNNKIT_INLINE double tanh(double x) { return std::tanh(x); }
};

// ----------------------------------------------------------------------------------------------- context
// A zoneout mask over the whole sequence (T, N, H): floats (evaluation's p), or bools (training) made floats a row
// at a time, inside the step's row pass (so on the thread that runs the row, beside its other work).
template <typename S>
struct ZoneMask {
  const S* values = nullptr;
  const bool* keep = nullptr;
  int64_t H = 0;
  int64_t step = 0;                     // N * H: one step's elements
  int64_t window = 0;                   // the window's first element
  at::Tensor rows;                      // (N, H): a bool mask's rows as S, row n written by the thread that runs n

  void set(const at::Tensor& m) {
    if (!m.defined()) return;
    H = m.size(2);
    step = m.size(1) * H;
    if (m.scalar_type() == at::kBool) {
      keep = m.data_ptr<bool>();
      rows = at::empty({step}, at::TensorOptions().dtype(c10::CppTypeToScalarType<S>::value));
    } else {
      values = m.data_ptr<S>();
    }
  }
  bool defined() const { return values != nullptr || keep != nullptr; }
  // Row n of window step t as S, or nullptr when there is no mask. Only one step's rows run at a time, and each
  // row on one thread, so row n's slot of `rows` is free.
  const S* row(int64_t t, int64_t n) const {
    const int64_t offset = window + t * step + n * H;
    if (values) return values + offset;
    if (!keep) return nullptr;
    // read as bytes (a bool is 0 or 1): `k[i] ? 1 : 0` on bools stays a scalar, branching loop in gcc
    const uint8_t* k = reinterpret_cast<const uint8_t*>(keep) + offset;
    S* out = static_cast<S*>(rows.data_ptr()) + n * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) out[j] = S(k[j]);
    return out;
  }
};

template <typename S> struct Ctx;
// Layer norm's gate rebuild for the backward: row r of the window (step t * N + sequence n), whose gates hold
// LN(x_t U) and whose norm is the forward's, gets the activated gates the forward step made (bit for bit: the same
// expressions); nullptr where the backward reads no gates (the RNN without zoneout).
template <typename S> using Row = void (*)(Ctx<S>&, int64_t);

template <typename S>
struct Ctx {
  Mode mode;
  int64_t N = 0, H = 0, G = 0, GH = 0, P = 0;
  Product<S> fw[2], bw[2];              // h_{t-1} W (forward) and dG W^T (backward); Cho's GRU: [rz, n] blocks
  Product<S> proj_fw, proj_bw;          // the LSTM's projection: m R^T (forward), dh R (backward)
  bool projected = false;
  const S* bias = nullptr;             // (GH,), never null
  const S* b_hn = nullptr;
  at::Tensor bias_t;                    // owns bias
  at::Tensor gates, hs, cs, hw_n, cell_out;  // window views (see the header comment)
  const bool* mask = nullptr;           // window (W, N) or nullptr
  const S* h_mask = nullptr;            // (N, H) recurrent dropout or nullptr
  ZoneMask<S> zh, zc;                   // zoneout of h and C
  at::Tensor hd, zero;                  // (N, H) see the header comment; (H,) zeros
  at::Tensor scratch, scratch_h;        // (N, GH) and an (N, H) view of its start
  at::Tensor dY, dG, aux, dh, dc, d_proj;  // backward
  at::Tensor dy_t;                      // dY[t] made contiguous when the caller's strides need it
  const S* ln_ig = nullptr;             // layer norm (see the header comment)
  const S* ln_ib = nullptr;
  const S* ln_g = nullptr;
  const S* ln_b = nullptr;
  const S* lnc_g = nullptr;
  const S* lnc_b = nullptr;
  at::Tensor norm_in, rstd_in, norm_kept, rstd_kept, norm, rstd, dA, dlnc, c_hat, dX, ln_sums;
  at::Tensor ln_out[2];                 // ln_buf's views, the products' outputs: (N, GH) (Cho's GRU: (N, 2H)), (N, H)
  bool ln_in_step = false;              // layer norm: x_t U normalised in the row passes (else before the steps)
  std::function<void(int64_t)> side;    // backward: the other thread's work while step t's rows run (for_rows)
  mutable int64_t side_at = -1;         // ... the step it last ran for (once a step)
  bool raw_gates = false;               // backward: the window's gates hold the raw x_t U, rebuilt row by row
  int64_t kept = 0;                     // layer norm: the window's first steps whose LN(x_t U) is in norm_kept
  Row<S> rebuild = nullptr;             // ... by this (rebuild_row)

  bool valid(int64_t t, int64_t n) const { return mask == nullptr || mask[t * N + n]; }
  // Zoneout's row n of window step t (z: zh or zc), or zeros when that mask is absent.
  const S* zone_row(const ZoneMask<S>& z, int64_t t, int64_t n) const {
    const S* r = z.row(t, n);
    return r ? r : ptr(zero);
  }
  // The window's slice of the masks that change with the step: the lengths mask and zoneout, from step t0.
  void at_step(const bool* lengths, int64_t t0) {
    mask = lengths ? lengths + t0 * N : nullptr;
    zh.window = t0 * zh.step, zc.window = t0 * zc.step;
  }
  bool zoned() const { return zh.defined() || zc.defined(); }
  bool normed() const { return ln_g != nullptr; }
  // Row n of step t of layer norm's normalised values and 1/sigma: the recurrent product's, or (`input`) x_t U's
  // (from norm_kept in the kept steps).
  S* norm_row(int64_t t, int64_t n, bool input = false) const {
    return ptr(input ? (t < kept ? norm_kept : norm_in) : norm) + (t * N + n) * GH;
  }
  S* rstd_row(int64_t t, int64_t n, bool input = false) const {
    return ptr(input ? (t < kept ? rstd_kept : rstd_in) : rstd) + (t * N + n) * G;
  }
  // ... and the LSTM's C^_t's in the backward (H).
  S* c_hat_row(int64_t t, int64_t n) const { return ptr(c_hat) + (t * N + n) * H; }
  // Row n of step t of dA (GH), and that row zeroed (a row past a sequence's end).
  S* dA_row(int64_t t, int64_t n) const { return ptr(dA) + (t * N + n) * GH; }
  void zero_dA_row(int64_t t, int64_t n) const { std::fill(dA_row(t, n), dA_row(t, n) + GH, S(0)); }
  // The untyped data_ptr: the entry points checked every dtype, and data_ptr<S>()'s own check costs ~30 ns a call
  // (layer norm's rows call this a dozen times a row and step: a quarter of a millisecond a (200, 4, 128) step).
  static S* ptr(const at::Tensor& a) { return a.defined() ? static_cast<S*>(a.data_ptr()) : nullptr; }
  const S* dy_at(int64_t t) {
    dy_t = dY.select(0, t);
    if (!dy_t.is_contiguous()) dy_t = dy_t.contiguous();
    return dy_t.data_ptr<S>();
  }
};

// Rows per thread in a step's row pass (kGrainElements: small enough that the small LSTM shapes use both threads,
// large enough to pay for the fork).
template <typename S>
int64_t row_grain(const Ctx<S>& c) {
  constexpr int64_t kGrainElements = 4096;
  return std::max<int64_t>(1, kGrainElements / (c.H * std::max<int64_t>(c.G, 2)));
}

// Runs f(n, valid) for every row n of step t; rows are split over threads once a step has enough work. Where
// they aren't and the context has side work (c.side), the rows run on one thread and that work on the other, at
// the step's first row pass.
template <typename S, typename F>
RNNKIT_INLINE void for_rows(const Ctx<S>& c, int64_t t, const F& f) {
  if (c.side && c.side_at != t) {
    c.side_at = t;
    at::parallel_for(0, 2, 1, [&](int64_t task0, int64_t task1) {
      for (int64_t task = task0; task < task1; ++task) {
        if (task == 1) c.side(t);
        else for (int64_t n = 0; n < c.N; ++n) f(n, c.valid(t, n));
      }
    });
    return;
  }
  at::parallel_for(0, c.N, row_grain(c), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) f(n, c.valid(t, n));
  });
}

// One step of the forward (backward) loop at window step t; defined per mode in cells.cpp, `zoned` picking the
// variant with zoneout, `normed` the one with layer norm.
template <typename S> using Step = void (*)(Ctx<S>&, int64_t);
template <typename S> Step<S> forward_step(Mode mode, bool zoned = false, bool normed = false);
template <typename S> Step<S> backward_step(Mode mode, bool zoned = false, bool normed = false);
template <typename S> Row<S> rebuild_gates(Mode mode, bool zoned);

// ----------------------------------------------------------------------------------------------- weights
inline Mode parse_mode(const std::string& s) {
  if (s == "rnn_tanh") return Mode::kRnnTanh;
  if (s == "rnn_relu") return Mode::kRnnRelu;
  if (s == "lstm") return Mode::kLstm;
  if (s == "gru") return Mode::kGru;
  if (s == "gru_reset_after") return Mode::kGruResetAfter;
  TORCH_CHECK(false, "rnnkit fused: unknown mode ", s);
}

inline bool is_rnn(Mode m) { return m == Mode::kRnnTanh || m == Mode::kRnnRelu; }
inline bool is_gru(Mode m) { return m == Mode::kGru || m == Mode::kGruResetAfter; }

// The weights as the loop uses them: the biases folded into the input projection wherever they are additive;
// w_hr (P, H) the LSTM's projection R, or undefined.
struct Weights {
  at::Tensor w_ih, w_hh, bias, b_hn, w_hr;
  Weights(Mode mode, const at::Tensor& wi, const at::Tensor& wh, const std::optional<at::Tensor>& b_ih,
          const std::optional<at::Tensor>& b_hh, const std::optional<at::Tensor>& hr = std::nullopt)
      : w_ih(wi), w_hh(wh.contiguous()) {
    if (hr.has_value() && hr->defined()) {
      TORCH_CHECK(mode == Mode::kLstm, "rnnkit fused: only the LSTM projects its state (w_hr)");
      w_hr = hr->contiguous();
    }
    const int64_t H = hidden();
    if (b_ih.has_value() && b_ih->defined()) {
      bias = b_ih->add(*b_hh);
      if (mode == Mode::kGruResetAfter) {           // b_hn stays inside r * (h W_n + b_hn)
        bias.narrow(0, 2 * H, H).copy_(b_ih->narrow(0, 2 * H, H));
        b_hn = b_hh->narrow(0, 2 * H, H).contiguous();
      }
    }
    if (mode == Mode::kGruResetAfter && !b_hn.defined()) b_hn = at::zeros({H}, w_hh.options());
  }
  int64_t hidden() const { return w_hr.defined() ? w_hr.size(1) : w_hh.size(1); }   // H
  int64_t state() const { return w_hh.size(1); }                                    // P
};

// The per-call context with the recurrent products a forward (`fw`) and a backward (`bw`) loop need.
template <typename S>
Ctx<S> make_ctx(Mode mode, const Weights& w, int64_t N, bool fw, bool bw) {
  Ctx<S> c;
  c.mode = mode;
  c.N = N;
  c.H = w.hidden();
  c.P = w.state();
  c.GH = w.w_hh.size(0);
  c.G = c.GH / c.H;
  const int64_t H = c.H;
  c.projected = w.w_hr.defined();
  if (c.projected) {
    if (fw) c.proj_fw.init(w.w_hr.t(), N);
    if (bw) c.proj_bw.init(w.w_hr, N);
  }
  if (mode == Mode::kGru) {                        // the reset gate sits between the two blocks' products
    const at::Tensor rz = w.w_hh.narrow(0, 0, 2 * H), n = w.w_hh.narrow(0, 2 * H, H);
    if (fw) c.fw[0].init(rz.t(), N), c.fw[1].init(n.t(), N);
    if (bw) c.bw[0].init(rz, N), c.bw[1].init(n, N);
  } else {
    if (fw) c.fw[0].init(w.w_hh.t(), N);
    if (bw) c.bw[0].init(w.w_hh, N);
  }
  c.bias_t = w.bias.defined() ? w.bias.contiguous() : at::zeros({c.GH}, w.w_hh.options());
  c.bias = Ctx<S>::ptr(c.bias_t);
  c.b_hn = Ctx<S>::ptr(w.b_hn);
  c.scratch = at::empty({N, c.GH}, w.w_hh.options());
  c.hd = at::empty({N, c.P}, w.w_hh.options());
  c.zero = at::zeros({c.H}, w.w_hh.options());
  c.scratch_h = c.scratch.view(-1).narrow(0, 0, N * c.H).view({N, c.H});
  return c;
}

}  // namespace rnnkit
