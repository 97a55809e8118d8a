// rnnkit fused engine: the matrix products. The per-step recurrent product h_{t-1} W (forward) and dG W^T
// (backward) multiplies a fixed weight block, T times; each Product picks once, per call, the fastest way
// this torch build offers for its shape:
//   small    up to 32 rows (small batches, generation): a register-blocked kernel over a copy of the weight
//            packed once into 16-column panels (below): faster than MKL there (BENCHMARKS.md);
//   oneDNN   at::native::mkldnn_matmul (exported by libtorch_cpu in oneDNN builds) for bigger float32 products,
//            where its blocked kernels beat MKL's sgemm on the recurrent shapes (BENCHMARKS.md);
//   MKL      the packed-GEMM API (cblas_sgemm_pack/compute, exported by MKL builds of libtorch_cpu) for the
//            rest of float32: the weight is packed once per sequence instead of inside every step's sgemm,
//            and products under ~2 MFLOP run on one thread (splitting them costs more than it saves);
//   ATen     at::addmm_out (MKL/OpenBLAS sgemm or dgemm) for float64 and wherever the others are absent.
// The products done once per window (input projection, dX, dW) go to oneDNN (float32) or ATen: gemm_once().
// That is the choice on AMD CPUs, where it was measured first. On Intel CPUs MKL runs its own tuned kernels
// (elsewhere MKL takes a generic path), and there its packed GEMM beat both the small kernel and oneDNN for the
// per-step products, and its sgemm beat oneDNN for the once-per-window ones, at every shape and cell measured
// (BENCHMARKS.md, "Engine speed on an Intel Xeon"): mkl_first(), true where the CPU says GenuineIntel and torch
// has MKL, sends them all to MKL.
// The MKL and oneDNN entry points are weak references: null where a torch build lacks them, and the product
// then falls back to ATen, so the extension loads against any torch.
//
// Arguments (all strided 2-D views, row stride any, column stride 1 except as noted):
//   Product::init(weight (k, n), rows m)   weight may be a transposed view (column stride != 1); read, and
//                                          (small, MKL) copied into a packed buffer owned by the Product
//   Product::run(out (m, n), a (m, k), accumulate)   out = a @ weight (+ out); out must not alias a or weight
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#define RNNKIT_INLINE inline __attribute__((always_inline))

extern "C" {  // MKL's C API; MKL_INT is 32-bit (LP64) in torch's MKL
size_t cblas_sgemm_pack_get_size(int identifier, int m, int n, int k) __attribute__((weak));
void cblas_sgemm_pack(int layout, int identifier, int trans, int m, int n, int k, float alpha, const float* src,
                      int ld, float* dest) __attribute__((weak));
void cblas_sgemm_compute(int layout, int transa, int transb, int m, int n, int k, const float* a, int lda,
                         const float* b, int ldb, float beta, float* c, int ldc) __attribute__((weak));
int MKL_Set_Num_Threads_Local(int threads) __attribute__((weak));  // mkl_set_num_threads_local in mkl_service.h
}

namespace at::native {  // ATen/native/mkldnn/Matmul.h (not shipped with the wheel's headers)
void mkldnn_matmul(const at::Tensor& mat1, const at::Tensor& mat2, const at::Tensor& result, float beta,
                   float alpha) __attribute__((weak));
}

namespace rnnkit {

enum class Backend : int { kAuto = -1, kATen = 0, kMklPacked = 1, kOneDnn = 2, kSmall = 3 };
Backend& forced_backend();   // kAuto unless a test or benchmark forces one (the module's _set_backend)

struct Thresholds {                           // in flops; tunable (the module's _set_thresholds) for benchmarks
  double onednn_step = 16777216.0;            // 2^24: per-step products over 32 rows from (64, 256) x (256, 512) up
  double onednn_once = 4194304.0;             // 2^22: once-per-window products (projection, gradients)
  double serial = 2097152.0;                  // 2^21: below this, MKL runs the product on one thread
  double small_task = 262144.0;               // 2^18: the small kernel's work per thread (more starves a thread at 4-32 rows)
};
Thresholds& thresholds();
bool& mkl_first();           // every float32 product to MKL: true on Intel CPUs with MKL (the module's _mkl_first)

inline bool mkl_packed_available() { return cblas_sgemm_pack_get_size && cblas_sgemm_pack && cblas_sgemm_compute; }

// Whether this CPU is Intel's (CPUID's vendor string), where MKL picks its own best kernels.
inline bool intel_cpu() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return false;
  char vendor[13];
  std::memcpy(vendor, &ebx, 4), std::memcpy(vendor + 4, &edx, 4), std::memcpy(vendor + 8, &ecx, 4);
  vendor[12] = '\0';
  return std::strcmp(vendor, "GenuineIntel") == 0;
#else
  return false;
#endif
}

// out (+)= a @ b through ATen.
inline void gemm(at::Tensor out, const at::Tensor& a, const at::Tensor& b, bool accumulate) {
  if (accumulate) {
    at::addmm_out(out, out, a, b);
  } else {
    at::mm_out(out, a, b);
  }
}

inline bool onednn_available() { return at::native::mkldnn_matmul != nullptr; }

// out (+)= a @ b for the once-per-window products (input projection, dX, dW): oneDNN for float32 where it has
// them (faster than MKL at these shapes on AMD CPUs), else ATen (MKL's sgemm on Intel CPUs: mkl_first()).
inline void gemm_once(at::Tensor out, const at::Tensor& a, const at::Tensor& b, bool accumulate) {
  const double flops = 2.0 * a.size(0) * a.size(1) * b.size(1);
  const Backend forced = forced_backend();
  if (out.scalar_type() == at::kFloat && onednn_available() && flops >= thresholds().onednn_once &&
      ((forced == Backend::kAuto && !mkl_first()) || forced == Backend::kOneDnn)) {
    at::native::mkldnn_matmul(a, b, out, accumulate ? 1.0f : 0.0f, 1.0f);
  } else {
    gemm(out, a, b, accumulate);
  }
}

// ------------------------------------------------------------------------------------- small batches
// Up to kSmallRows rows the BLAS libraries spend much on setup and packing (MKL: ~10 µs for a (4, 128) x
// (128, 512) product, twice this kernel's time). This kernel keeps a (<=4) x 16 block of the output in vector
// registers and streams the weight from a copy packed once into panels of 16 columns: panel p holds
// B[:, 16p : 16p+16] k-major and contiguous, zero-padded past n. GCC vector extensions: 8-wide where AVX is on,
// split into narrower vectors elsewhere.
constexpr int64_t kSmallRows = 32;
constexpr int64_t kPanel = 16;
typedef float v8f __attribute__((vector_size(32)));

// (k, n) float, any strides -> (ceil(n / 16), k, 16) contiguous, in one pass (ATen's strided copies of a
// transposed weight took ~10x longer: a cost paid on every call, forward and backward).
inline at::Tensor pack_panels(const at::Tensor& b) {
  const int64_t k = b.size(0), n = b.size(1), panels = (n + kPanel - 1) / kPanel;
  const int64_t s0 = b.stride(0), s1 = b.stride(1);
  at::Tensor out = at::empty({panels, k, kPanel}, b.options());
  const float* src = b.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, panels, std::max<int64_t>(1, 8192 / (k * kPanel)), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c0 = p * kPanel, cols = std::min(kPanel, n - c0);
      float* panel = dst + p * k * kPanel;
      if (cols < kPanel) std::fill(panel, panel + k * kPanel, 0.0f);
      for (int64_t j = 0; j < cols; ++j) {              // column by column: each reads a row of W when b = W^T
        const float* col = src + (c0 + j) * s1;
        for (int64_t r = 0; r < k; ++r) panel[r * kPanel + j] = col[r * s0];
      }
    }
  });
  return out;
}

// c[0:R, 0:cols] (+)= a[0:R, :] @ panel, a and c row-major with leading dimensions lda, ldc.
template <int R>
RNNKIT_INLINE void small_block(const float* a, int64_t lda, const float* panel, int64_t k, float* c,
                               int64_t ldc, int64_t cols, bool accumulate) {
  v8f acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = v8f{};
  for (int64_t kk = 0; kk < k; ++kk) {
    v8f b0, b1;
    std::memcpy(&b0, panel + kk * kPanel, sizeof b0);
    std::memcpy(&b1, panel + kk * kPanel + 8, sizeof b1);
    for (int r = 0; r < R; ++r) {
      const float s = a[r * lda + kk];
      acc[r][0] += s * b0;
      acc[r][1] += s * b1;
    }
  }
  for (int r = 0; r < R; ++r) {
    float block[kPanel];
    std::memcpy(block, &acc[r][0], sizeof acc[r][0]);
    std::memcpy(block + 8, &acc[r][1], sizeof acc[r][1]);
    float* row = c + r * ldc;
    for (int64_t j = 0; j < cols; ++j) row[j] = accumulate ? row[j] + block[j] : block[j];
  }
}

// c (m, n) (+)= a (m, k) @ B, B given as pack_panels(B); panels are split over threads only when big enough.
inline void small_gemm(const float* a, int64_t lda, int64_t m, const float* packed, int64_t k, int64_t n,
                       float* c, int64_t ldc, bool accumulate) {
  const int64_t panels = (n + kPanel - 1) / kPanel;
  const int64_t grain = std::max<int64_t>(1, static_cast<int64_t>(thresholds().small_task) / (2 * m * k * kPanel));
  at::parallel_for(0, panels, grain, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float* panel = packed + p * k * kPanel;
      const int64_t cols = std::min(kPanel, n - p * kPanel);
      float* cp = c + p * kPanel;
      int64_t r = 0;
      for (; r + 4 <= m; r += 4) small_block<4>(a + r * lda, lda, panel, k, cp + r * ldc, ldc, cols, accumulate);
      const float* ar = a + r * lda;
      float* cr = cp + r * ldc;
      switch (m - r) {
        case 3: small_block<3>(ar, lda, panel, k, cr, ldc, cols, accumulate); break;
        case 2: small_block<2>(ar, lda, panel, k, cr, ldc, cols, accumulate); break;
        case 1: small_block<1>(ar, lda, panel, k, cr, ldc, cols, accumulate); break;
        default: break;
      }
    }
  });
}

inline Backend choose_backend(bool is_float, double flops, int64_t rows) {
  const bool mkl = mkl_packed_available();
  const bool onednn = onednn_available();
  if (!is_float) return Backend::kATen;
  switch (forced_backend()) {
    case Backend::kATen: return Backend::kATen;
    case Backend::kMklPacked: return mkl ? Backend::kMklPacked : Backend::kATen;
    case Backend::kOneDnn: return onednn ? Backend::kOneDnn : Backend::kATen;
    case Backend::kSmall: return Backend::kSmall;
    case Backend::kAuto: break;
  }
  if (mkl_first()) return Backend::kMklPacked;                    // (true only where MKL's packed GEMM is)
  if (rows <= kSmallRows) return Backend::kSmall;
  if (onednn && flops >= thresholds().onednn_step) return Backend::kOneDnn;
  return mkl ? Backend::kMklPacked : Backend::kATen;
}

template <typename S>
struct Product {
  at::Tensor b, packed;
  Backend backend = Backend::kATen;
  int m = 0, n = 0, k = 0;
  bool serial = false;

  void init(const at::Tensor& weight, int64_t rows) {
    b = weight;
    packed = at::Tensor();
    m = static_cast<int>(rows), k = static_cast<int>(b.size(0)), n = static_cast<int>(b.size(1));
    const double flops = 2.0 * m * k * n;
    backend = choose_backend(std::is_same_v<S, float>, flops, rows);
    serial = flops < thresholds().serial && MKL_Set_Num_Threads_Local != nullptr;
    if constexpr (std::is_same_v<S, float>) {
      if (backend == Backend::kSmall) packed = pack_panels(b);
      if (backend != Backend::kMklPacked) return;
      constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112, kBMatrix = 162;
      // MKL wants the leading dimension at least the row's length (n, or k transposed) even where a size of 1
      // leaves a stride free (hidden_size 1: W^T is (1, GH) with strides (1, 1)); such a stride is never stepped.
      const bool rowmajor = b.stride(1) == 1 && (b.stride(0) >= n || k == 1);
      if (!rowmajor && !(b.stride(0) == 1 && (b.stride(1) >= k || n == 1))) {
        backend = Backend::kATen;
        return;
      }
      const int64_t ld = rowmajor ? std::max<int64_t>(b.stride(0), n) : std::max<int64_t>(b.stride(1), k);
      const size_t bytes = cblas_sgemm_pack_get_size(kBMatrix, m, n, k);
      packed = at::empty({static_cast<int64_t>(bytes / sizeof(float)) + 16}, b.options());
      cblas_sgemm_pack(kRowMajor, kBMatrix, rowmajor ? kNoTrans : kTrans, m, n, k, 1.0f, b.data_ptr<float>(),
                       static_cast<int>(ld), packed.data_ptr<float>());
    }
  }

  void run(at::Tensor out, const at::Tensor& a, bool accumulate) const {
    if constexpr (std::is_same_v<S, float>) {
      if (backend == Backend::kMklPacked && a.stride(1) == 1 && out.stride(1) == 1) {
        constexpr int kRowMajor = 101, kNoTrans = 111, kPacked = 151;
        const int previous = serial ? MKL_Set_Num_Threads_Local(1) : 0;
        const int64_t lda = std::max<int64_t>(a.stride(0), k), ldc = std::max<int64_t>(out.stride(0), n);
        cblas_sgemm_compute(kRowMajor, kNoTrans, kPacked, m, n, k, a.data_ptr<float>(), static_cast<int>(lda),
                            packed.data_ptr<float>(), n, accumulate ? 1.0f : 0.0f, out.data_ptr<float>(),
                            static_cast<int>(ldc));
        if (serial) MKL_Set_Num_Threads_Local(previous);
        return;
      }
      if (backend == Backend::kOneDnn) {
        at::native::mkldnn_matmul(a, b, out, accumulate ? 1.0f : 0.0f, 1.0f);
        return;
      }
      if (backend == Backend::kSmall && a.stride(1) == 1 && out.stride(1) == 1) {
        small_gemm(a.data_ptr<float>(), a.stride(0), m, packed.data_ptr<float>(), k, n, out.data_ptr<float>(),
                   out.stride(0), accumulate);
        return;
      }
    }
    gemm(out, a, b, accumulate);
  }
};

}  // namespace rnnkit
