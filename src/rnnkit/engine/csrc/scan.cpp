// rnnkit scan kernels: the linear recurrence h_t = a_t * h_{t-1} + b_t over a whole sequence, forward and
// backward, and the minimal GRU / LSTM (Feng et al. 2024) whose gates feed it, fused into the same passes.
//
// Shapes: T steps, N sequences, H hidden units; everything time-major, row-major and contiguous. A "column" is
// one (n, j) pair; the recurrence is independent per column, so each thread takes a contiguous range of the N*H
// columns and walks all T steps for it (no barrier per step). Per step and column the work is a few flops on
// data read once: the loops are memory bound, and the point of fusing is to read and write each tensor once.
//
// scan_forward(a, b, h0, reverse) -> h
//   a, b   (T, N, H)  read only;  h0 (N, H) read only;  h (T, N, H) fresh, h_t = a_t * h_{t-1} + b_t
//   reverse: the steps run from T-1 down to 0 (h_{t-1} is then h at t+1)
// scan_backward(a, h, h0, dh, dh_last, reverse) -> [da, db, dh0]
//   h the forward's result; dh (T, N, H) the gradient w.r.t. h (any strides: made contiguous); dh_last (N, H)
//   an extra gradient w.r.t. the last step's h, or None. The reverse scan: g_t = dh_t + a_{t+1} g_{t+1}
//   (g past the last step = dh_last), da_t = g_t * h_{t-1}, db_t = g_t, dh0 = a_first * g_first.
//
// min_forward(cell, G, bias, h0, mask, reverse, positive) -> [out, h_last]
//   cell 0 = minGRU, G (T, N, 2H) = [k_z | p] pre-activations without bias (x_t U, one matmul over all steps);
//   cell 1 = minLSTM, G (T, N, 3H) = [k_f | k_i | p]. bias (GH,) or None, added here (no pass of its own).
//     minGRU:  z = σ(k_z),  h~ = φ(p),  h_t = (1 - z) * h_{t-1} + z * h~
//     minLSTM: f = σ(k_f),  i = σ(k_i),  a = f / (f + i),  h~ = φ(p),  h_t = a * h_{t-1} + (1 - a) * h~
//   φ = identity, or with `positive` g(p) = p + 1/2 (p >= 0), σ(p) (p < 0) (Feng et al.'s log-space version).
//   mask (T, N) bool (true = valid step; valid steps are a prefix of each sequence) or None. Past a sequence's
//   end the state is held (a = 1, b = 0) and the output is 0. h_last (N, H) = the state after the last valid
//   step in the direction of travel; out (T, N, H). Both fresh. Saved for the backward: G, out (nothing else).
// min_backward(cell, x, weight, G, bias, h0, out, mask, dY, dh_last, reverse, positive, need_dx, need_dw,
//              need_bias) -> [dx, dweight, dbias, dh0]
//   x (T, N, I) contiguous and weight (GH, I): the forward's G = x weight^T; G, out as the forward had and made
//   them. dY (T, N, H) any strides or None; dh_last (N, H) or None. Runs in chunks of steps, the latest first:
//   each chunk's gate gradients dG go to a chunk-sized buffer and are folded into dx = dG weight and
//   dweight (+)= dG^T x by one ATen matmul each before the next chunk (the full dG is never held); dbias (GH,) is
//   the column sums of dG, accumulated in double, per thread, inside the same pass. dx / dweight / dbias are None
//   unless asked for. dh0 (N, H). Reads only: the saved tensors are never written.
#include <torch/csrc/utils/pybind.h>

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/where.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/zeros_like.h>
#include <ATen/ops/zeros.h>

#include <vector>

#include "fused.h"   // Math<S>: the vectorizable sigmoid

namespace rnnkit {
namespace {

constexpr int64_t kBlock = 16;               // columns per scheduling unit: one cache line of floats

// Calls f(q0, q1) for contiguous ranges of the N*H columns, one range per thread, each range starting on a
// multiple of kBlock (threads never write the same cache line); one thread when the work is small.
template <typename F>
void for_columns(int64_t cols, int64_t T, const F& f) {
  const int64_t blocks = (cols + kBlock - 1) / kBlock;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / (kBlock * std::max<int64_t>(T, 1)));
  at::parallel_for(0, blocks, grain, [&](int64_t b0, int64_t b1) {
    f(b0 * kBlock, std::min(b1 * kBlock, cols));
  });
}

// The (n, j0, j1) pieces of the column range [q0, q1) of an (N, H) plane.
struct Piece { int64_t n, j0, j1; };
std::vector<Piece> pieces(int64_t q0, int64_t q1, int64_t H) {
  std::vector<Piece> out;
  for (int64_t q = q0; q < q1;) {
    const int64_t n = q / H, j0 = q % H, j1 = std::min<int64_t>(H, j0 + (q1 - q));
    out.push_back({n, j0, j1});
    q += j1 - j0;
  }
  return out;
}

template <typename S> RNNKIT_INLINE S positive_act(S p) {       // g(p), Feng et al.
  return p >= S(0) ? p + S(0.5) : Math<S>::sigmoid(p);
}
template <typename S> RNNKIT_INLINE S positive_grad(S p) {      // g'(p)
  const S s = Math<S>::sigmoid(p);
  return p >= S(0) ? S(1) : s * (S(1) - s);
}


const bool* mask_ptr(const std::optional<at::Tensor>& mask, int64_t T, int64_t N) {
  if (!mask.has_value() || !mask->defined()) return nullptr;
  TORCH_CHECK(mask->scalar_type() == at::kBool && mask->is_contiguous() && mask->numel() == T * N,
              "rnnkit scan: mask must be a contiguous (T, N) bool tensor");
  return mask->data_ptr<bool>();
}

at::Tensor contiguous_or_undefined(const std::optional<at::Tensor>& t) {
  return t.has_value() && t->defined() ? t->contiguous() : at::Tensor();
}

void check_plane(const at::Tensor& t, const at::Tensor& like, const char* what) {
  TORCH_CHECK(t.dim() == 2 && t.size(0) == like.size(1) && t.size(1) == like.size(2),
              "rnnkit scan: ", what, " must be (N, H)");
  TORCH_CHECK(t.scalar_type() == like.scalar_type(), "rnnkit scan: ", what, " has the wrong dtype");
}

// ------------------------------------------------------------------------------- the plain linear scan

template <typename S>
void scan_forward_impl(const S* a, const S* b, const S* h0, S* h, int64_t T, int64_t N, int64_t H, bool reverse) {
  const int64_t NH = N * H;
  for_columns(NH, T, [&](int64_t q0, int64_t q1) {
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = reverse ? T - 1 - s : s;
      const S* prev = s == 0 ? h0 : h + (reverse ? t + 1 : t - 1) * NH;
      const S* at = a + t * NH;
      const S* bt = b + t * NH;
      S* ht = h + t * NH;
#pragma omp simd
      for (int64_t q = q0; q < q1; ++q) ht[q] = at[q] * prev[q] + bt[q];
    }
  });
}

template <typename S>
void scan_backward_impl(const S* a, const S* h, const S* h0, const S* dh, S* da, S* db, S* carry, int64_t T,
                        int64_t N, int64_t H, bool reverse) {
  const int64_t NH = N * H;
  for_columns(NH, T, [&](int64_t q0, int64_t q1) {
    for (int64_t s = T - 1; s >= 0; --s) {          // the forward's order, backwards
      const int64_t t = reverse ? T - 1 - s : s;
      const S* prev = s == 0 ? h0 : h + (reverse ? t + 1 : t - 1) * NH;
      const S* at = a + t * NH;
      const S* dht = dh + t * NH;
      S* dat = da + t * NH;
      S* dbt = db + t * NH;
#pragma omp simd
      for (int64_t q = q0; q < q1; ++q) {
        const S g = dht[q] + carry[q];              // g_t = dL/dh_t + a_{t+1} g_{t+1}
        dbt[q] = g;                                 // db_t = g_t
        dat[q] = g * prev[q];                       // da_t = g_t h_{t-1}
        carry[q] = at[q] * g;                       // what reaches h_{t-1}
      }
    }
  });
}

at::Tensor scan_forward(const at::Tensor& a_, const at::Tensor& b_, const at::Tensor& h0_, bool reverse) {
  TORCH_CHECK(a_.dim() == 3 && a_.sizes() == b_.sizes(), "rnnkit scan: a and b must be (T, N, H) alike");
  TORCH_CHECK(a_.scalar_type() == b_.scalar_type(), "rnnkit scan: a and b must have one dtype");
  check_plane(h0_, a_, "h0");
  const at::Tensor a = a_.contiguous(), b = b_.contiguous(), h0 = h0_.contiguous();
  const int64_t T = a.size(0), N = a.size(1), H = a.size(2);
  at::Tensor h = at::empty({T, N, H}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "rnnkit_scan_forward", [&] {
    scan_forward_impl<scalar_t>(a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(), h0.data_ptr<scalar_t>(),
                                h.data_ptr<scalar_t>(), T, N, H, reverse);
  });
  return h;
}

std::vector<at::Tensor> scan_backward(const at::Tensor& a_, const at::Tensor& h_, const at::Tensor& h0_,
                                      const at::Tensor& dh_, const std::optional<at::Tensor>& dh_last,
                                      bool reverse) {
  const at::Tensor a = a_.contiguous(), h = h_.contiguous(), h0 = h0_.contiguous(), dh = dh_.contiguous();
  TORCH_CHECK(a.sizes() == h.sizes() && a.sizes() == dh.sizes(), "rnnkit scan: a, h, dh must be (T, N, H) alike");
  check_plane(h0, a, "h0");
  const int64_t T = a.size(0), N = a.size(1), H = a.size(2);
  at::Tensor da = at::empty_like(a), db = at::empty_like(a);
  at::Tensor carry = dh_last.has_value() && dh_last->defined() ? dh_last->contiguous().clone() : at::zeros_like(h0);
  check_plane(carry, a, "dh_last");
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "rnnkit_scan_backward", [&] {
    scan_backward_impl<scalar_t>(a.data_ptr<scalar_t>(), h.data_ptr<scalar_t>(), h0.data_ptr<scalar_t>(),
                                 dh.data_ptr<scalar_t>(), da.data_ptr<scalar_t>(), db.data_ptr<scalar_t>(),
                                 carry.data_ptr<scalar_t>(), T, N, H, reverse);
  });
  return {da, db, carry};
}

// ------------------------------------------------------------------------------- minGRU / minLSTM, fused

// One step of one row piece, forward: hc (the carried state) updated in place, out written.
template <typename S, int Cell, bool Pos>
RNNKIT_INLINE void min_step_forward(const S* g, const S* bias, int64_t H, int64_t j0, int64_t j1, S* hc, S* out) {
  if (Cell == 0) {
    const S* k = g;
    const S* p = g + H;
#pragma omp simd
    for (int64_t j = j0; j < j1; ++j) {
      const S kz = k[j] + bias[j];
      const S pj = p[j] + bias[H + j];
      const S z = Math<S>::sigmoid(kz);                                 // z_t = σ(x_t U_z + b_z)
      const S ht = Pos ? positive_act(pj) : pj;                         // h~_t = φ(x_t U_h + b_h)
      const S h = hc[j] + z * (ht - hc[j]);                             // h_t = (1 - z_t) h_{t-1} + z_t h~_t
      hc[j] = h;
      out[j] = h;
    }
  } else {
    const S* kf = g;
    const S* ki = g + H;
    const S* p = g + 2 * H;
#pragma omp simd
    for (int64_t j = j0; j < j1; ++j) {
      const S f = Math<S>::sigmoid(kf[j] + bias[j]);                   // f_t = σ(x_t U_f + b_f)
      const S i = Math<S>::sigmoid(ki[j] + bias[H + j]);               // i_t = σ(x_t U_i + b_i)
      const S pj = p[j] + bias[2 * H + j];
      const S ht = Pos ? positive_act(pj) : pj;                         // h~_t = φ(x_t U_h + b_h)
      const S a = f / (f + i);                                          // f'_t = f / (f + i), i'_t = 1 - f'_t
      const S h = ht + a * (hc[j] - ht);                                // h_t = f'_t h_{t-1} + i'_t h~_t
      hc[j] = h;
      out[j] = h;
    }
  }
}

// One step of one row piece, backward: carry (dL/dh_t arriving from step t+1) updated in place; dG and the
// bias partial sums written.
template <typename S, int Cell, bool Pos, bool DB>
RNNKIT_INLINE void min_step_backward(const S* g, const S* bias, const S* prev, const S* dy, int64_t H, int64_t j0,
                                     int64_t j1, S* carry, S* dg, double* dbias) {
  if (Cell == 0) {
    const S* k = g;
    const S* p = g + H;
    S* dk = dg;
    S* dp = dg + H;
#pragma omp simd
    for (int64_t j = j0; j < j1; ++j) {
      const S kz = k[j] + bias[j];
      const S pj = p[j] + bias[H + j];
      const S z = Math<S>::sigmoid(kz);
      const S ht = Pos ? positive_act(pj) : pj;
      const S dh = dy[j] + carry[j];                      // dL/dh_t
      const S dkz = dh * (ht - prev[j]) * z * (S(1) - z);               // through z_t = σ(k)
      const S dpj = Pos ? dh * z * positive_grad(pj) : dh * z;          // through h~_t
      dk[j] = dkz;
      dp[j] = dpj;
      carry[j] = (S(1) - z) * dh;                                       // dL/dh_{t-1} from this step
      if (DB) {
        dbias[j] += dkz;
        dbias[H + j] += dpj;
      }
    }
  } else {
    const S* kf = g;
    const S* ki = g + H;
    const S* p = g + 2 * H;
    S* dkf = dg;
    S* dki = dg + H;
    S* dp = dg + 2 * H;
#pragma omp simd
    for (int64_t j = j0; j < j1; ++j) {
      const S f = Math<S>::sigmoid(kf[j] + bias[j]);
      const S i = Math<S>::sigmoid(ki[j] + bias[H + j]);
      const S pj = p[j] + bias[2 * H + j];
      const S ht = Pos ? positive_act(pj) : pj;
      const S a = f / (f + i);
      const S dh = dy[j] + carry[j];
      const S da = dh * (prev[j] - ht) * a * (S(1) - a);               // dL/d(log f - log i)
      const S df = da * (S(1) - f);                                     // d(log σ(k))/dk = 1 - σ(k)
      const S di = -da * (S(1) - i);
      const S dpj = Pos ? dh * (S(1) - a) * positive_grad(pj) : dh * (S(1) - a);
      dkf[j] = df;
      dki[j] = di;
      dp[j] = dpj;
      carry[j] = a * dh;
      if (DB) {
        dbias[j] += df;
        dbias[H + j] += di;
        dbias[2 * H + j] += dpj;
      }
    }
  }
}

template <typename S, int Cell, bool Pos>
void min_forward_impl(const S* G, const S* bias, const S* h0, const bool* mask, S* out, S* hc, int64_t T, int64_t N,
                      int64_t H, bool reverse) {
  const int64_t GH = (Cell == 0 ? 2 : 3) * H, NH = N * H;
  std::memcpy(hc, h0, sizeof(S) * NH);
  for_columns(NH, T, [&](int64_t q0, int64_t q1) {
    const std::vector<Piece> ps = pieces(q0, q1, H);
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = reverse ? T - 1 - s : s;
      for (const Piece& c : ps) {
        S* o = out + (t * N + c.n) * H;
        if (mask && !mask[t * N + c.n]) {                               // past the end: hold, output 0
          std::fill(o + c.j0, o + c.j1, S(0));
          continue;
        }
        min_step_forward<S, Cell, Pos>(G + (t * N + c.n) * GH, bias, H, c.j0, c.j1, hc + c.n * H, o);
      }
    }
  });
}

template <typename S, int Cell, bool Pos, bool DB>
void min_backward_impl(const S* G, const S* bias, const S* h0, const S* out, const bool* mask, const S* dY, S* dG,
                       S* carry, double* dbias_partial, int64_t T, int64_t N, int64_t H, bool reverse) {
  const int64_t GH = (Cell == 0 ? 2 : 3) * H, NH = N * H;
  for_columns(NH, T, [&](int64_t q0, int64_t q1) {
    const std::vector<Piece> ps = pieces(q0, q1, H);
    double* db = DB ? dbias_partial + at::get_thread_num() * GH : nullptr;
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = reverse ? T - 1 - s : s;
      const int64_t tp = reverse ? t + 1 : t - 1;                       // the step before t in the forward's order
      for (const Piece& c : ps) {
        const int64_t row = t * N + c.n;
        S* dg = dG + row * GH;
        if (mask && !mask[row]) {                                       // held state: a = 1, b = 0, output constant
          std::fill(dg + c.j0, dg + c.j1, S(0));
          std::fill(dg + H + c.j0, dg + H + c.j1, S(0));
          if (Cell == 1) std::fill(dg + 2 * H + c.j0, dg + 2 * H + c.j1, S(0));
          continue;
        }
        const bool first = s == 0 || (mask && !mask[tp * N + c.n]);
        const S* prev = first ? h0 + c.n * H : out + (tp * N + c.n) * H;
        min_step_backward<S, Cell, Pos, DB>(G + row * GH, bias, prev, dY + row * H, H, c.j0, c.j1,
                                        carry + c.n * H, dg, db);
      }
    }
  });
}

// Calls f(cell, positive) with both as compile-time constants.
template <typename F>
void dispatch_cell(int64_t cell, bool positive, const F& f) {
  using Gru = std::integral_constant<int, 0>;
  using Lstm = std::integral_constant<int, 1>;
  TORCH_CHECK(cell == 0 || cell == 1, "rnnkit scan: cell must be 0 (minGRU) or 1 (minLSTM)");
  if (cell == 0) positive ? f(Gru(), std::true_type()) : f(Gru(), std::false_type());
  else positive ? f(Lstm(), std::true_type()) : f(Lstm(), std::false_type());
}

// The bias as the loops read it: never null (zeros without one).
at::Tensor bias_or_zeros(const std::optional<at::Tensor>& bias, const at::Tensor& G) {
  if (!bias.has_value() || !bias->defined()) return at::zeros({G.size(2)}, G.options());
  TORCH_CHECK(bias->numel() == G.size(2) && bias->scalar_type() == G.scalar_type(),
              "rnnkit scan: bias must be (GH,) in G's dtype");
  return bias->contiguous();
}

void check_min(int64_t cell, const at::Tensor& G, const at::Tensor& h0) {
  TORCH_CHECK(G.dim() == 3 && G.is_contiguous(), "rnnkit scan: G must be a contiguous (T, N, GH) tensor");
  const int64_t gates = cell == 0 ? 2 : 3;
  TORCH_CHECK(h0.dim() == 2 && G.size(2) == gates * h0.size(1) && h0.size(0) == G.size(1),
              "rnnkit scan: G (T, N, ", gates, "H) and h0 (N, H) disagree");
  TORCH_CHECK(h0.scalar_type() == G.scalar_type(), "rnnkit scan: h0 and G must have one dtype");
}

std::vector<at::Tensor> min_forward(int64_t cell, const at::Tensor& G, const std::optional<at::Tensor>& bias_,
                                    const at::Tensor& h0_, const std::optional<at::Tensor>& mask, bool reverse,
                                    bool positive) {
  const at::Tensor h0 = h0_.contiguous();
  check_min(cell, G, h0);
  const at::Tensor bias = bias_or_zeros(bias_, G);
  const int64_t T = G.size(0), N = G.size(1), H = h0.size(1);
  const bool* m = mask_ptr(mask, T, N);
  at::Tensor out = at::empty({T, N, H}, G.options()), h_last = at::empty({N, H}, G.options());
  AT_DISPATCH_FLOATING_TYPES(G.scalar_type(), "rnnkit_min_forward", [&] {
    using S = scalar_t;
    dispatch_cell(cell, positive, [&](auto c, auto p) {
      min_forward_impl<S, decltype(c)::value, decltype(p)::value>(
          G.data_ptr<S>(), bias.data_ptr<S>(), h0.data_ptr<S>(), m, out.data_ptr<S>(), h_last.data_ptr<S>(), T, N,
          H, reverse);
    });
  });
  return {out, h_last};
}

// The backward in chunks of steps, latest first: each chunk's gate gradients dG go to a chunk-sized buffer (in
// cache, allocated once) and are folded into dx = dG U^T and dW = dG^T X by one matmul each (ATen's, as
// torch.nn.functional.linear's backward) before the next chunk; the full (T, N, GH) dG is never materialized.
constexpr int64_t kChunkRows = 2048;   // rows (steps x N) per chunk: big enough matmuls, a buffer that stays in cache

std::vector<at::Tensor> min_backward(int64_t cell, const at::Tensor& x, const at::Tensor& weight,
                                     const at::Tensor& G, const std::optional<at::Tensor>& bias_,
                                     const at::Tensor& h0_, const at::Tensor& out,
                                     const std::optional<at::Tensor>& mask, const std::optional<at::Tensor>& dY_,
                                     const std::optional<at::Tensor>& dh_last, bool reverse, bool positive,
                                     bool need_dx, bool need_dw, bool need_bias) {
  const at::Tensor h0 = h0_.contiguous();
  check_min(cell, G, h0);
  const int64_t T = G.size(0), N = G.size(1), H = h0.size(1), GH = G.size(2), I = weight.size(1);
  TORCH_CHECK(x.is_contiguous() && x.dim() == 3 && x.size(0) == T && x.size(1) == N && x.size(2) == I &&
              weight.dim() == 2 && weight.size(0) == GH, "rnnkit scan: x (T, N, I) contiguous and weight (GH, I)");
  TORCH_CHECK(out.is_contiguous() && out.dim() == 3 && out.size(0) == T && out.size(1) == N && out.size(2) == H,
              "rnnkit scan: out must be the forward's contiguous (T, N, H) result");
  const bool with_bias = need_bias && bias_.has_value() && bias_->defined();
  const at::Tensor bias = bias_or_zeros(bias_, G);
  const at::Tensor dY = dY_.has_value() && dY_->defined() ? dY_->contiguous() : at::zeros_like(out);
  TORCH_CHECK(dY.sizes() == out.sizes() && dY.scalar_type() == out.scalar_type(), "rnnkit scan: dY must be (T, N, H)");
  const bool* m = mask_ptr(mask, T, N);
  at::Tensor carry = dh_last.has_value() && dh_last->defined() ? dh_last->contiguous().clone() : at::zeros_like(h0);
  check_plane(carry, out, "dh_last");
  const at::Tensor w = weight.contiguous();
  at::Tensor dx = need_dx ? at::empty_like(x) : at::Tensor();
  at::Tensor dw = need_dw ? at::empty_like(w) : at::Tensor();
  at::Tensor partial = with_bias ? at::zeros({at::get_num_threads(), GH}, G.options().dtype(at::kDouble))
                                 : at::Tensor();
  const int64_t K = std::max<int64_t>(1, std::min<int64_t>(T, kChunkRows / std::max<int64_t>(N, 1)));
  at::Tensor buffer = at::empty({K, N, GH}, G.options());
  const int64_t chunks = (T + K - 1) / K;
  for (int64_t c = 0; c < chunks; ++c) {
    // the forward went t = 0..T-1 (reverse: T-1..0); the backward takes its chunks the other way round
    const int64_t t0 = reverse ? c * K : std::max<int64_t>(0, T - (c + 1) * K);
    const int64_t W = reverse ? std::min(K, T - t0) : T - c * K - t0;
    // the state before the chunk's first step (in the forward's order), per sequence
    at::Tensor prev = h0;
    if (!reverse && t0 > 0) prev = out.select(0, t0 - 1);
    if (reverse && t0 + W < T) {
      prev = out.select(0, t0 + W);
      if (mask.has_value() && mask->defined())   // past a sequence's end the state is still h0
        prev = at::where(mask->select(0, t0 + W).unsqueeze(1), prev, h0);
      prev = prev.contiguous();
    }
    at::Tensor dG = buffer.narrow(0, 0, W);
    AT_DISPATCH_FLOATING_TYPES(G.scalar_type(), "rnnkit_min_backward", [&] {
      using S = scalar_t;
      dispatch_cell(cell, positive, [&](auto cc, auto p) {
        constexpr int C = decltype(cc)::value;
        constexpr bool P = decltype(p)::value;
        auto run = with_bias ? &min_backward_impl<S, C, P, true> : &min_backward_impl<S, C, P, false>;
        run(G.data_ptr<S>() + t0 * N * GH, bias.data_ptr<S>(), prev.data_ptr<S>(), out.data_ptr<S>() + t0 * N * H,
            m ? m + t0 * N : nullptr, dY.data_ptr<S>() + t0 * N * H, dG.data_ptr<S>(), carry.data_ptr<S>(),
            with_bias ? partial.data_ptr<double>() : nullptr, W, N, H, reverse);
      });
    });
    const at::Tensor dG2 = dG.view({W * N, GH});
    if (need_dx) {
      at::Tensor dx2 = dx.narrow(0, t0, W).view({W * N, I});
      at::mm_out(dx2, dG2, w);                                                                // dX = dG U^T
    }
    if (need_dw) {
      const at::Tensor x2 = x.narrow(0, t0, W).view({W * N, I});
      if (c == 0) at::mm_out(dw, dG2.t(), x2);                                               // dU^T = dG^T X
      else dw.addmm_(dG2.t(), x2);
    }
  }
  at::Tensor dbias = with_bias ? partial.sum(0).to(G.scalar_type()) : at::Tensor();
  return {dx, dw, dbias, carry};
}

}  // namespace

void bind_scan(pybind11::module& m) {
  m.def("scan_forward", &scan_forward, "h_t = a_t h_{t-1} + b_t over (T, N, H) (see scan.cpp)");
  m.def("scan_backward", &scan_backward, "the reverse scan: [da, db, dh0] (see scan.cpp)");
  m.def("min_forward", &min_forward, "minGRU / minLSTM gates and scan, one pass (see scan.cpp)");
  m.def("min_backward", &min_backward, "their backward, one pass: [dG, dbias, dh0] (see scan.cpp)");
}

}  // namespace rnnkit
