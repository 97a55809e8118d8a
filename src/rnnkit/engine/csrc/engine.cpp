// rnnkit fused engine: the forward and backward time loops over a whole sequence, and the Python bindings.
//
// forward(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, mask, window, store, w_hr, h_mask, zh, zc, ln_ig, ln_ib, ln_g,
//         ln_b, lnc_g, lnc_b, kept) -> [hs, c_T, cs, gates, hw_n, cell_out, norm, rstd]
//   mode    "rnn_tanh" | "rnn_relu" | "lstm" | "gru" | "gru_reset_after"
//   x       (T, N, I)   contiguous, float32 or float64; read only
//   h0      (N, P)      read only (copied into hs[0]); c0 (N, H) for the LSTM, else None
//   w_ih    (GH, I), w_hh (GH, P), b_ih / b_hh (GH,) or None; w_hr (P, H) the LSTM's projection or None
//           (P = H without it); read only
//   mask    (T, N, 1) bool contiguous, or None
//   h_mask  (N, H) recurrent dropout, zh / zc (T, N, H) zoneout of h / of the LSTM's C, each contiguous in x's
//           dtype, or None (see fused.h; not with w_hr)
//   ln_*    layer norm's gains and biases, (GH,) of x U and of the recurrent product, (H,) of the LSTM's C^_t, or
//           None (fused.h; not with w_hr)
//   norm, rstd (T+kept, N, GH), (T+kept, N, G) under layer norm and store (fused.h), else None: rows [0, T)
//           LN(h W)'s, row T+t LN(x_t U)'s for t < kept (so the backward doesn't recompute those)
//   kept    under layer norm and store, how many leading steps keep LN(x_t U)'s normalised values (clamped to
//           [0, T]; ops.py chooses it: memory for time); else ignored
//   store   true: keep everything the backward needs, window ignored:
//             hs (T+1, N, P); cs (T+1, N, H) LSTM; gates (T, N, GH) activated (not RNN; the RNN with zoneout:
//             its activations before zoneout); hw_n (T, N, H) PyTorch GRU; cell_out (T, N, H) projected LSTM.
//             Under layer norm no gates: the forward runs in windows the size of the backward's chunks, and the
//             backward rebuilds each chunk's gates, row by row in its steps, from x_t U (recomputed: one more
//             matmul per chunk) and norm
//           false: run in windows of `window` steps through window-sized scratch and keep only hs and, for
//             the LSTM, the cell state at every window boundary in cs (ceil(T/window)+1, N, H); gates, hw_n and
//             cell_out are None. Used for inference and for checkpointed training (the backward recomputes a
//             window).
//   returns hs (T+1, N, P) with hs[0] = h0 (the caller's h_seq is the view hs[1:]); c_T (N, H) a fresh tensor
//           (LSTM) or None.
//
// backward(mode, x, hs, cs, gates, hw_n, w_ih, w_hh, b_ih, b_hh, mask, dY, dc_T, need_dx, window, w_hr, cell_out,
//          h_mask, zh, zc, norm, rstd, ln_ig, ln_ib, ln_g, ln_b, lnc_g, lnc_b)
//        -> [dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr, d ln_ig, d ln_ib, d ln_g, d ln_b, d lnc_g, d lnc_b]
//   the saved tensors as forward returned them (window = the forward's window if it ran with store=false, else
//   0); read only, never written. dY (T, N, P) any strides; dc_T (N, H) or None. dx is None unless need_dx,
//   dc0 unless LSTM, the biases' gradients unless b_ih is given, dw_hr unless w_hr is. All results are fresh
//   tensors.
//   The loop walks the steps in chunks (the forward's windows when recomputing or under layer norm): each
//   chunk's gate gradients go to a chunk-sized buffer and are folded into dx, dW and db by one matmul each before
//   the next chunk.
#include <torch/csrc/utils/pybind.h>

#include <string>

#include "buffer_pool.h"
#include "chunk_grads.h"
#include "step_common.h"

namespace rnnkit {
namespace {

constexpr int64_t kChunkRows = 2048;   // rows (steps x N) per backward chunk: big matmuls, a small buffer

// A slice of steps [t0, t0+n) of a possibly undefined buffer.
at::Tensor steps(const at::Tensor& a, int64_t t0, int64_t n) { return a.defined() ? a.narrow(0, t0, n) : a; }

at::Tensor empty_if(bool cond, at::IntArrayRef size, const at::TensorOptions& opt) {
  return cond ? fresh(size, opt) : at::Tensor();
}

// Steps per backward chunk without a checkpoint window (and per forward window under layer norm, so that the
// backward's recomputed x_t U is the forward's to the bit: the same matmul shapes).
int64_t chunk_steps(int64_t T, int64_t N) { return std::max<int64_t>(1, std::min(T, kChunkRows / N)); }

// x_t U for window steps [t0, t0+W) into `target` (W*N, GH): one matmul (the steps add the bias). Under layer norm
// the window's first c.kept steps keep LN(x_t U) (fused.h): the forward makes them in a matmul of their own, so
// that the backward's rebuild, which recomputes only the other steps, has the forward's matmul shape and bits.
// Where a step's rows don't split over threads (few sequences), the rows are normalised here (and, in the
// backward's rebuild, their gates remade: rebuild_row) in one pass split over threads; else in the steps. (With
// two threads or more the backward's rebuild of few sequences goes to the thread the rows leave idle instead, a
// step ahead of them: side_rows.)
template <typename S>
void input_projection(Ctx<S>& c, const Weights& w, const at::Tensor& x, int64_t t0, int64_t W,
                      const at::Tensor& target) {
  const int64_t N = c.N, k = c.kept;
  const auto project = [&](int64_t a, int64_t n) {
    gemm_once(target.narrow(0, a * N, n * N), x.narrow(0, t0 + a, n).reshape({n * N, x.size(2)}), w.w_ih.t(), false);
  };
  if (k > 0 && !c.raw_gates) project(0, k);
  if (k < W) project(k, W - k);
  if (!c.normed() || c.ln_in_step || c.side) return;           // (c.side: the backward's steps rebuild the rows)
  S* v = Ctx<S>::ptr(target);
  at::parallel_for(0, W * N, std::max<int64_t>(1, 4096 / c.GH), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      if (c.raw_gates) steps::rebuild_row(c, r / N, r % N, false);
      else steps::ln_input_row(c, r / N, r % N, v + r * c.GH, false);
    }
  });
}

// The forward loop over steps [t0, t0+W) into the window buffers of c (hs[0], and cs[0] for the LSTM, set);
// LN(x_t U)'s normalised values are kept where c.norm_in is set (a recomputed window, for the backward that follows)
// and for the kept steps.
template <typename S>
void run_window(Ctx<S>& c, const Weights& w, const at::Tensor& x, const bool* mask, int64_t t0, int64_t W) {
  input_projection(c, w, x, t0, W, (is_rnn(c.mode) ? c.hs.narrow(0, 1, W) : c.gates).view({W * c.N, c.GH}));
  c.at_step(mask, t0);
  const Step<S> step = forward_step<S>(c.mode, c.zoned(), c.normed());
  for (int64_t t = 0; t < W; ++t) step(c, t);
}

// Recurrent dropout's and zoneout's masks into the context (pointers into the caller's tensors).
template <typename S>
void set_masks(Ctx<S>& c, const at::Tensor& h_mask, const at::Tensor& zh, const at::Tensor& zc) {
  TORCH_CHECK(!c.projected || !(h_mask.defined() || zh.defined() || zc.defined()),
              "rnnkit fused: no recurrent dropout or zoneout with a projection (proj_size)");
  c.h_mask = Ctx<S>::ptr(h_mask);
  c.zh.set(zh);
  c.zc.set(zc);
}

// Layer norm's gains and biases into the context (ln: [g_ih, b_ih, g_hh, b_hh, g_c, b_c], undefined = none).
template <typename S>
void set_layer_norm(Ctx<S>& c, const Weights& w, const std::vector<at::Tensor>& ln) {
  if (!ln[0].defined()) return;
  TORCH_CHECK(!c.projected, "rnnkit fused: no layer norm with a projection (proj_size)");
  TORCH_CHECK(ln[1].defined() && ln[2].defined() && ln[3].defined() &&
              (c.mode != Mode::kLstm || (ln[4].defined() && ln[5].defined())),
              "rnnkit fused: layer norm needs every gain and bias");
  c.ln_ig = ln[0].data_ptr<S>(), c.ln_ib = ln[1].data_ptr<S>();
  c.ln_g = ln[2].data_ptr<S>(), c.ln_b = ln[3].data_ptr<S>();
  if (c.mode == Mode::kLstm) c.lnc_g = ln[4].data_ptr<S>(), c.lnc_b = ln[5].data_ptr<S>();
  c.ln_in_step = at::get_num_threads() > 1 && c.N >= 2 * row_grain(c);   // (else input_projection's pass)
  const at::Tensor ln_buf = fresh({c.N * c.GH}, w.w_hh.options());
  const int64_t first = c.mode == Mode::kGru ? 2 * c.H : c.GH;
  c.ln_out[0] = ln_buf.narrow(0, 0, c.N * first).view({c.N, first});
  c.ln_out[1] = ln_buf.narrow(0, 0, c.N * c.H).view({c.N, c.H});
}

// The window [t0, t0+W)'s share of the steps before `kept`, whose LN(x_t U) lives in norm's and rstd's rows from T
// on (the forward writes them, the backward's rebuild reads them): c.kept and its views.
template <typename S>
void keep_input_norm(Ctx<S>& c, const at::Tensor& norm, const at::Tensor& rstd, int64_t T, int64_t t0, int64_t W,
                     int64_t kept) {
  c.kept = std::clamp<int64_t>(kept - t0, 0, W);
  c.norm_kept = c.kept ? norm.narrow(0, T + t0, c.kept) : at::Tensor();
  c.rstd_kept = c.kept ? rstd.narrow(0, T + t0, c.kept) : at::Tensor();
}

template <typename S>
std::vector<at::Tensor> forward_impl(Mode mode, const at::Tensor& x, const at::Tensor& h0,
                                     const at::Tensor& c0, const Weights& w, const bool* mask,
                                     int64_t window, bool store, const at::Tensor& h_mask, const at::Tensor& zh,
                                     const at::Tensor& zc, const std::vector<at::Tensor>& ln, int64_t kept) {
  const int64_t T = x.size(0), N = x.size(1), H = w.hidden(), P = w.state(), GH = w.w_hh.size(0);
  const bool lstm = mode == Mode::kLstm, hw_n = mode == Mode::kGruResetAfter;
  const bool gates = !is_rnn(mode) || zh.defined();                 // the RNN with zoneout keeps f(a_t)
  const bool projected = w.w_hr.defined();
  const auto opt = x.options();
  at::Tensor hs = fresh({T + 1, N, P}, opt);
  hs.select(0, 0).copy_(h0);
  Ctx<S> c = make_ctx<S>(mode, w, N, true, false);
  set_masks(c, h_mask, zh, zc);
  set_layer_norm(c, w, ln);
  const bool normed = c.normed();
  if (store) {          // (layer norm: windows whose gates and LN(x_t U) are scratch: the backward rebuilds them)
    const int64_t K = normed ? chunk_steps(T, N) : std::max<int64_t>(1, T);
    kept = normed ? std::clamp<int64_t>(kept, 0, T) : 0;
    const at::Tensor cs = empty_if(lstm, {T + 1, N, H}, opt), gs = empty_if(gates, {normed ? K : T, N, GH}, opt);
    const at::Tensor hwn = empty_if(hw_n, {T, N, H}, opt), co = empty_if(projected, {T, N, H}, opt);
    const at::Tensor norm = empty_if(normed, {T + kept, N, GH}, opt);
    const at::Tensor rstd = empty_if(normed, {T + kept, N, c.G}, opt);
    if (lstm) cs.select(0, 0).copy_(c0);
    for (int64_t t0 = 0; t0 < T; t0 += K) {
      const int64_t W = std::min(K, T - t0);
      c.hs = hs.narrow(0, t0, W + 1);
      c.cs = steps(cs, t0, W + 1);
      c.gates = steps(gs, normed ? 0 : t0, W);
      c.hw_n = steps(hwn, t0, W);
      c.cell_out = steps(co, t0, W);
      c.norm = steps(norm, t0, W), c.rstd = steps(rstd, t0, W);
      keep_input_norm(c, norm, rstd, T, t0, W, kept);
      run_window(c, w, x, mask, t0, W);
    }
    at::Tensor c_T = lstm ? cs.select(0, T).clone() : at::Tensor();
    return {hs, c_T, cs, normed ? at::Tensor() : gs, hwn, co, norm, rstd};
  }
  const int64_t K = std::max<int64_t>(1, std::min(window, T));
  const int64_t segments = (T + K - 1) / K;
  at::Tensor ckpt = empty_if(lstm, {segments + 1, N, H}, opt);
  at::Tensor cbuf = empty_if(lstm, {K + 1, N, H}, opt);
  at::Tensor gbuf = empty_if(gates, {K, N, GH}, opt);
  at::Tensor hbuf = empty_if(hw_n, {K, N, H}, opt);
  at::Tensor obuf = empty_if(projected, {K, N, H}, opt);
  at::Tensor nbuf = empty_if(normed, {K, N, GH}, opt), rbuf = empty_if(normed, {K, N, c.G}, opt);
  if (lstm) ckpt.select(0, 0).copy_(c0);
  for (int64_t s = 0; s < segments; ++s) {
    const int64_t t0 = s * K, W = std::min(K, T - t0);
    c.hs = hs.narrow(0, t0, W + 1);
    c.cs = steps(cbuf, 0, W + 1);
    c.gates = steps(gbuf, 0, W);
    c.hw_n = steps(hbuf, 0, W);
    c.cell_out = steps(obuf, 0, W);
    c.norm = steps(nbuf, 0, W);
    c.rstd = steps(rbuf, 0, W);
    if (lstm) c.cs.select(0, 0).copy_(ckpt.select(0, s));
    run_window(c, w, x, mask, t0, W);
    if (lstm) ckpt.select(0, s + 1).copy_(c.cs.select(0, W));
  }
  at::Tensor c_T = lstm ? ckpt.select(0, segments).clone() : at::Tensor();
  return {hs, c_T, ckpt, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
}

template <typename S>
std::vector<at::Tensor> backward_impl(Mode mode, const at::Tensor& x, const at::Tensor& hs, const at::Tensor& cs,
                                      const at::Tensor& gates, const at::Tensor& hw_n, const Weights& w,
                                      const bool* mask, const at::Tensor& dY, const at::Tensor& dc_T,
                                      bool need_dx, int64_t window, const at::Tensor& cell_out,
                                      const at::Tensor& h_mask, const at::Tensor& zh, const at::Tensor& zc,
                                      const at::Tensor& norm, const at::Tensor& rstd,
                                      const std::vector<at::Tensor>& ln) {
  const int64_t T = x.size(0), N = x.size(1), H = w.hidden(), P = w.state(), GH = w.w_hh.size(0);
  const bool normed = ln[0].defined();
  const bool lstm = mode == Mode::kLstm, recompute = window > 0 && (!is_rnn(mode) || zh.defined() || normed);
  const bool projected = w.w_hr.defined();
  const bool has_bias = w.bias.defined();
  const auto opt = x.options();
  const bool rebuild = normed && window == 0;                         // layer norm's gates: from the saved values
  const int64_t K = window > 0 ? std::min(window, T) : chunk_steps(T, N);
  const int64_t kept = rebuild ? norm.size(0) - T : 0;                // steps whose LN(x_t U) the forward kept
  TORCH_CHECK(kept >= 0 && kept <= T, "rnnkit fused: layer norm's saved values have ", norm.size(0),
              " rows for ", T, " steps");
  Ctx<S> c = make_ctx<S>(mode, w, N, recompute, true);
  set_masks(c, h_mask, zh, zc);
  set_layer_norm(c, w, ln);
  c.dh = fresh_zeros({N, P}, opt);
  if (lstm) c.dc = dc_T.defined() ? dc_T.contiguous().clone() : fresh_zeros({N, H}, opt);
  std::vector<at::Tensor> g = {need_dx ? fresh(x.sizes(), opt) : at::Tensor(), c.dh, c.dc,
                               fresh(w.w_ih.sizes(), opt), fresh(w.w_hh.sizes(), opt),
                               has_bias ? fresh_zeros({GH}, opt) : at::Tensor(), at::Tensor(),
                               empty_if(projected, w.w_hr.sizes(), opt)};
  for (size_t k = 0; k < ln.size(); ++k) g.push_back(ln[k].defined() ? at::zeros_like(ln[k]) : at::Tensor());
  if (has_bias) g[6] = mode == Mode::kGruResetAfter ? fresh_zeros({GH}, opt) : g[5];
  at::Tensor dG = fresh({K, N, GH}, opt);
  at::Tensor aux = empty_if(is_gru(mode), {K, N, H}, opt);
  at::Tensor hbuf = empty_if(recompute, {K + 1, N, P}, opt), cbuf = empty_if(recompute && lstm, {K + 1, N, H}, opt);
  at::Tensor gbuf = empty_if(recompute || rebuild, {K, N, GH}, opt);
  at::Tensor nbuf = empty_if(recompute && mode == Mode::kGruResetAfter, {K, N, H}, opt);
  at::Tensor obuf = empty_if(recompute && projected, {K, N, H}, opt);
  at::Tensor pbuf = empty_if(projected, {K, N, P}, opt);
  at::Tensor lnbuf = empty_if(recompute && normed, {K, N, GH}, opt);
  at::Tensor rbuf = empty_if(recompute && normed, {K, N, c.G}, opt);
  at::Tensor nin = empty_if(normed, {K, N, GH}, opt), rin = empty_if(normed, {K, N, c.G}, opt);
  at::Tensor dA = empty_if(normed, {K, N, GH}, opt), dlnc = empty_if(normed && lstm, {K, N, H}, opt);
  at::Tensor chat = empty_if(normed && lstm, {K, N, H}, opt);
  at::Tensor dXbuf = empty_if(normed, {K, N, GH}, opt);
  if (normed) c.ln_sums = fresh_zeros({N, 3 * GH}, opt);
  const Step<S> step = backward_step<S>(mode, c.zoned(), normed);
  c.raw_gates = rebuild;
  const bool side = rebuild && at::get_num_threads() > 1 && !c.ln_in_step;   // a step's rows on one thread
  if (rebuild) c.rebuild = rebuild_gates<S>(mode, c.zoned());
  for (int64_t s = (T + K - 1) / K - 1; s >= 0; --s) {
    const int64_t t0 = s * K, W = std::min(K, T - t0);
    if (side) c.side = [&c, W](int64_t t) { steps::side_rows(c, t, W); }, c.side_at = -1;
    c.norm_in = steps(nin, 0, W), c.rstd_in = steps(rin, 0, W);
    keep_input_norm(c, norm, rstd, T, t0, W, kept);
    if (recompute) {                                   // rerun the window's forward from its checkpoint
      c.hs = hbuf.narrow(0, 0, W + 1);
      c.hs.select(0, 0).copy_(hs.select(0, t0));
      c.cs = steps(cbuf, 0, W + 1);
      if (lstm) c.cs.select(0, 0).copy_(cs.select(0, s));
      c.gates = gbuf.narrow(0, 0, W);
      c.hw_n = steps(nbuf, 0, W);
      c.cell_out = steps(obuf, 0, W);
      c.norm = steps(lnbuf, 0, W);
      c.rstd = steps(rbuf, 0, W);
      run_window(c, w, x, mask, t0, W);
    } else {
      c.hs = hs.narrow(0, t0, W + 1);
      c.cs = steps(cs, t0, W + 1);
      c.gates = rebuild ? gbuf.narrow(0, 0, W) : steps(gates, t0, W);
      c.hw_n = steps(hw_n, t0, W);
      c.cell_out = steps(cell_out, t0, W);
      c.norm = steps(norm, t0, W);
      c.rstd = steps(rstd, t0, W);
      if (rebuild) input_projection(c, w, x, t0, W, c.gates.view({W * N, GH}));   // raw x_t U: rebuilt by rows
    }
    c.d_proj = steps(pbuf, 0, W);
    c.dA = steps(dA, 0, W);
    c.dlnc = steps(dlnc, 0, W), c.c_hat = steps(chat, 0, W);
    c.dX = steps(dXbuf, 0, W);
    c.at_step(mask, t0);
    c.dY = dY.narrow(0, t0, W);
    c.dG = dG.narrow(0, 0, W);
    c.aux = steps(aux, 0, W);
    if (side) steps::side_rows(c, W, W);                              // the window's two ends
    for (int64_t t = W - 1; t >= 0; --t) step(c, t);
    if (side) steps::side_rows(c, -1, W);
    accumulate(c, w, x, hs, t0, W, g, has_bias, t0 + W == T, h_mask);
  }
  if (T == 0) {                                                      // no chunk ran
    g[3].zero_(), g[4].zero_();
    if (projected) g[7].zero_();
  }
  if (has_bias && mode != Mode::kGruResetAfter) g[6] = g[5].clone();
  return g;
}

const bool* mask_ptr(const std::optional<at::Tensor>& mask) {
  if (!mask.has_value() || !mask->defined()) return nullptr;
  TORCH_CHECK(mask->scalar_type() == at::kBool && mask->is_contiguous(), "rnnkit fused: mask must be contiguous bool");
  return mask->data_ptr<bool>();
}

// A recurrent-dropout or zoneout mask as the loops read it (contiguous, `shape`, x's dtype or, for zoneout,
// bool), or undefined.
at::Tensor checked_mask(const std::optional<at::Tensor>& m, const at::Tensor& x, at::IntArrayRef shape,
                        bool may_be_bool = true) {
  if (!m.has_value() || !m->defined()) return at::Tensor();
  const bool dtype_ok = m->scalar_type() == x.scalar_type() || (may_be_bool && m->scalar_type() == at::kBool);
  TORCH_CHECK(m->is_contiguous() && dtype_ok && m->sizes() == shape, "rnnkit fused: a recurrent-dropout or "
              "zoneout mask must be contiguous, ", x.scalar_type(), (may_be_bool ? " or bool" : ""), ", ", shape,
              "; got ", m->scalar_type(), " ", m->sizes());
  return *m;
}

const at::Tensor& or_undefined(const std::optional<at::Tensor>& t) {
  static const at::Tensor undefined;
  return t.has_value() ? *t : undefined;
}

// Layer norm's [g_ih, b_ih, g_hh, b_hh, g_c, b_c], checked: contiguous, x's dtype, (GH,) and (H,); all undefined
// without it.
std::vector<at::Tensor> layer_norm_params(const Weights& w, const at::Tensor& x, const std::optional<at::Tensor>& gi,
                                          const std::optional<at::Tensor>& bi, const std::optional<at::Tensor>& g,
                                          const std::optional<at::Tensor>& b, const std::optional<at::Tensor>& gc,
                                          const std::optional<at::Tensor>& bc) {
  std::vector<at::Tensor> out;
  const int64_t GH = w.w_hh.size(0), sizes[] = {GH, GH, GH, GH, w.hidden(), w.hidden()};
  int k = 0;
  for (const auto* p : {&gi, &bi, &g, &b, &gc, &bc}) {
    const at::Tensor& t = or_undefined(*p);
    TORCH_CHECK(!t.defined() || (t.is_contiguous() && t.scalar_type() == x.scalar_type() && t.dim() == 1 &&
                                 t.size(0) == sizes[k]),
                "rnnkit fused: a layer-norm gain or bias must be a contiguous (", sizes[k], ",) ", x.scalar_type(),
                " tensor, got ", t.defined() ? t.sizes() : at::IntArrayRef{});
    out.push_back(t);
    ++k;
  }
  return out;
}

std::vector<at::Tensor> forward(const std::string& mode_name, const at::Tensor& x, const at::Tensor& h0,
                                const std::optional<at::Tensor>& c0, const at::Tensor& w_ih,
                                const at::Tensor& w_hh, const std::optional<at::Tensor>& b_ih,
                                const std::optional<at::Tensor>& b_hh, const std::optional<at::Tensor>& mask,
                                int64_t window, bool store, const std::optional<at::Tensor>& w_hr,
                                const std::optional<at::Tensor>& h_mask, const std::optional<at::Tensor>& zh,
                                const std::optional<at::Tensor>& zc, const std::optional<at::Tensor>& ln_ig,
                                const std::optional<at::Tensor>& ln_ib, const std::optional<at::Tensor>& ln_g,
                                const std::optional<at::Tensor>& ln_b, const std::optional<at::Tensor>& lnc_g,
                                const std::optional<at::Tensor>& lnc_b, int64_t kept) {
  const Mode mode = parse_mode(mode_name);
  TORCH_CHECK(x.dim() == 3 && x.is_contiguous(), "rnnkit fused: x must be a contiguous (T, N, I) tensor");
  const Weights w(mode, w_ih, w_hh, b_ih, b_hh, w_hr);
  c10::AutoGradMode no_grad(false);
  std::vector<at::Tensor> out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnnkit_fused_forward", [&] {
    out = forward_impl<scalar_t>(mode, x, h0, or_undefined(c0), w, mask_ptr(mask), window, store,
                                 checked_mask(h_mask, x, {x.size(1), w.state()}, false),
                                 checked_mask(zh, x, {x.size(0), x.size(1), w.state()}),
                                 checked_mask(zc, x, {x.size(0), x.size(1), w.hidden()}),
                                 layer_norm_params(w, x, ln_ig, ln_ib, ln_g, ln_b, lnc_g, lnc_b), kept);
  });
  return out;
}

std::vector<at::Tensor> backward(const std::string& mode_name, const at::Tensor& x, const at::Tensor& hs,
                                 const std::optional<at::Tensor>& cs, const std::optional<at::Tensor>& gates,
                                 const std::optional<at::Tensor>& hw_n, const at::Tensor& w_ih,
                                 const at::Tensor& w_hh, const std::optional<at::Tensor>& b_ih,
                                 const std::optional<at::Tensor>& b_hh, const std::optional<at::Tensor>& mask,
                                 const at::Tensor& dY, const std::optional<at::Tensor>& dc_T, bool need_dx,
                                 int64_t window, const std::optional<at::Tensor>& w_hr,
                                 const std::optional<at::Tensor>& cell_out, const std::optional<at::Tensor>& h_mask,
                                 const std::optional<at::Tensor>& zh, const std::optional<at::Tensor>& zc,
                                 const std::optional<at::Tensor>& norm, const std::optional<at::Tensor>& rstd,
                                 const std::optional<at::Tensor>& ln_ig, const std::optional<at::Tensor>& ln_ib,
                                 const std::optional<at::Tensor>& ln_g, const std::optional<at::Tensor>& ln_b,
                                 const std::optional<at::Tensor>& lnc_g, const std::optional<at::Tensor>& lnc_b) {
  const Mode mode = parse_mode(mode_name);
  const Weights w(mode, w_ih, w_hh, b_ih, b_hh, w_hr);
  c10::AutoGradMode no_grad(false);
  std::vector<at::Tensor> out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnnkit_fused_backward", [&] {
    out = backward_impl<scalar_t>(mode, x, hs, or_undefined(cs), or_undefined(gates), or_undefined(hw_n), w,
                                  mask_ptr(mask), dY, or_undefined(dc_T), need_dx, window, or_undefined(cell_out),
                                  checked_mask(h_mask, x, {x.size(1), w.state()}, false),
                                  checked_mask(zh, x, {x.size(0), x.size(1), w.state()}),
                                  checked_mask(zc, x, {x.size(0), x.size(1), w.hidden()}), or_undefined(norm),
                                  or_undefined(rstd), layer_norm_params(w, x, ln_ig, ln_ib, ln_g, ln_b, lnc_g, lnc_b));
  });
  return out;
}

}  // namespace

void bind_stepper(pybind11::module& m);   // stepper.cpp
void bind_scan(pybind11::module& m);      // scan.cpp
void bind_masks(pybind11::module& m);     // masks.cpp
}  // namespace rnnkit

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "rnnkit's fused RNN engine: the whole time loop, forward and backward, in C++";
  m.def("forward", &rnnkit::forward, "the forward time loop (see engine.cpp)");
  m.def("backward", &rnnkit::backward, "the backward time loop (see engine.cpp)");
  m.def("_set_backend", [](int b) { rnnkit::forced_backend() = static_cast<rnnkit::Backend>(b); },
        "force the recurrent products' backend (-1 auto, 0 ATen, 1 MKL packed, 2 oneDNN, 3 small kernel); for tests");
  m.def("_set_thresholds", [](double onednn_step, double onednn_once, double serial, double small_task) {
        rnnkit::thresholds() = {onednn_step, onednn_once, serial, small_task}; },
        "backend thresholds in flops; for benchmarks");
  m.def("_mkl_first", [](std::optional<bool> value) {
        if (value) rnnkit::mkl_first() = *value && rnnkit::mkl_packed_available();
        return rnnkit::mkl_first(); },
        pybind11::arg("value") = pybind11::none(),
        "whether auto sends every float32 product to MKL (default: on Intel CPUs with MKL); sets it if given");
  m.def("_buffer_pool_stats", [] { return rnnkit::buffer_pool::pool().stats(); },
        "(blocks kept, bytes kept, requests served from the pool, requests that allocated); for tests");
  m.def("_gemm", [](at::Tensor out, const at::Tensor& a, const at::Tensor& b, bool accumulate) {
        rnnkit::gemm_once(out, a, b, accumulate); },
        "out (+)= a @ b as the engine's once-per-window products run (oneDNN for float32); for benchmarks");
  rnnkit::bind_stepper(m);
  rnnkit::bind_scan(m);
  rnnkit::bind_masks(m);
}
