// rnnkit masks: the regularisers' Bernoulli masks from a counter-based hash (engine/masks.py is the contract and
// the PyTorch twin that must give the same bits).
//
// bernoulli_mask(seed, shape, threshold, value, dtype) -> mask
//   element i (row-major, i < 2^32) is `value` (true for bool) where hash(i) < threshold, else 0, with
//     k0 = seed mod 2^32, k1 = (seed >> 32) mod 2^32 (seed as an unsigned 64-bit number)
//     hash(i) = mix(mix(i + k0 mod 2^32) xor k1),
//     mix(x): x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16   (mod 2^32)
//   (`mix` is C. Wellons's lowbias32, a bijection with low avalanche bias). threshold in [0, 2^32): the chance of
//   `value` is threshold / 2^32 (p = 1 never comes here: engine/masks.py fills those itself). Each element is
//   independent of the others, so the loop vectorizes and splits over threads: a (35, 20, 200) mask costs 0.04 ms
//   on one thread, 0.2 ms as 16-bit lanes of torch's generator.
//
// masked_scale(src, seed, threshold, scale) -> src * mask, the mask as bernoulli_mask(seed, src's shape, threshold,
//   scale) would give it, without making it: weight drop's dropped weight_hh, and in the backward the gradient
//   times the same mask (engine/weight_drop.py). src contiguous float32/float64; the result comes from the
//   engine's buffer pool (buffer_pool.h), so the three 0.6 MB tensors per layer and step of a (35, 20, 200) LSTM
//   (mask, dropped weight, its gradient) no longer fault their pages in every step.
#include <torch/csrc/utils/pybind.h>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>

#include <cstdint>
#include <vector>

#include "buffer_pool.h"

namespace rnnkit {
namespace {

inline uint32_t mix(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// A mask's key and threshold, checked: k0, k1 the two halves of the seed (as an unsigned 64-bit number), t the
// threshold, for a mask of n elements.
struct Key {
  uint32_t k0, k1, t;
  Key(int64_t seed, int64_t threshold, int64_t n) {
    TORCH_CHECK(n <= (int64_t(1) << 32), "rnnkit masks: a mask has at most 2^32 elements, got ", n);
    TORCH_CHECK(threshold >= 0 && threshold < (int64_t(1) << 32), "rnnkit masks: threshold must be in [0, 2^32)");
    const uint64_t s = static_cast<uint64_t>(seed);
    k0 = uint32_t(s), k1 = uint32_t(s >> 32), t = uint32_t(threshold);
  }
  // Whether element i is kept: 32-bit lanes only, so the loops below vectorize.
  bool keeps(uint32_t i) const { return mix(mix(i + k0) ^ k1) < t; }
};

// range(i0, i1) over [0, n) split between threads, with a grain of 2^20 (~0.2 ms of work): waking a second thread
// costs about that much. The loops `range` runs are functions of their own (noinline): inlined into the
// parallel_for lambda, GCC kept a scalar loop on the worker threads.
template <typename F>
void split(int64_t n, const F& range) {
  at::parallel_for(0, n, int64_t(1) << 20, range);
}

// o[k] = value where element i0 + k is kept, else 0, for k < count.
template <typename T>
__attribute__((noinline)) void fill_range(T* __restrict__ o, int64_t count, int64_t i0, Key key, T value) {
#pragma omp simd
  for (int64_t k = 0; k < count; ++k) o[k] = key.keeps(uint32_t(i0 + k)) ? value : T(0);
}

// o[k] = s[k] * (kept ? scale : 0): the same product as s times bernoulli_mask's values.
template <typename T>
__attribute__((noinline)) void scale_range(const T* __restrict__ s, T* __restrict__ o, int64_t count, int64_t i0,
                                           Key key, T scale) {
#pragma omp simd
  for (int64_t k = 0; k < count; ++k) o[k] = s[k] * (key.keeps(uint32_t(i0 + k)) ? scale : T(0));
}

at::Tensor bernoulli_mask(int64_t seed, const std::vector<int64_t>& shape, int64_t threshold, double value,
                          at::ScalarType dtype) {
  at::Tensor out = at::empty(shape, at::TensorOptions().dtype(dtype));
  const Key key(seed, threshold, out.numel());
  AT_DISPATCH_FLOATING_TYPES_AND3(at::kHalf, at::kBFloat16, at::kBool, dtype, "rnnkit_bernoulli_mask", [&] {
    scalar_t* o = out.data_ptr<scalar_t>();
    const scalar_t v = dtype == at::kBool ? scalar_t(1) : static_cast<scalar_t>(value);   // bool: true
    split(out.numel(), [=](int64_t i0, int64_t i1) { fill_range(o + i0, i1 - i0, i0, key, v); });
  });
  return out;
}

at::Tensor masked_scale(const at::Tensor& src, int64_t seed, int64_t threshold, double scale) {
  TORCH_CHECK(src.is_contiguous() && src.device().is_cpu(), "rnnkit masks: masked_scale takes a contiguous CPU tensor");
  const Key key(seed, threshold, src.numel());
  at::Tensor out = fresh(src.sizes(), src.options());
  AT_DISPATCH_FLOATING_TYPES(src.scalar_type(), "rnnkit_masked_scale", [&] {
    const scalar_t* s = src.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    const scalar_t c = static_cast<scalar_t>(scale);
    split(src.numel(), [=](int64_t i0, int64_t i1) { scale_range(s + i0, o + i0, i1 - i0, i0, key, c); });
  });
  return out;
}

}  // namespace

void bind_masks(pybind11::module& m) {
  m.def("bernoulli_mask", &bernoulli_mask, "a Bernoulli mask from a counter-based hash (see masks.cpp)");
  m.def("masked_scale", &masked_scale, "src times a Bernoulli mask from the same hash, without making it");
}

}  // namespace rnnkit
