// rnnkit fused engine: the matrix products. The per-step recurrent product h_{t-1} W (forward) and dG W^T
// (backward) multiplies a fixed weight block, T times; each Product picks once, per call, the fastest way
// this torch build offers for its shape:
//   oneDNN   at::native::mkldnn_matmul (exported by libtorch_cpu in oneDNN builds) for big float32 products,
//            where its blocked kernels run 1.2-1.7x faster than MKL's sgemm on the recurrent shapes;
//   MKL      the packed-GEMM API (cblas_sgemm_pack/compute, exported by MKL builds of libtorch_cpu) for the
//            rest of float32: the weight is packed once per sequence instead of inside every step's sgemm,
//            and products under ~2 MFLOP run on one thread (splitting them costs more than it saves);
//   ATen     at::addmm_out (MKL/OpenBLAS sgemm or dgemm) for float64 and wherever the others are absent.
// The products done once per window (input projection, dX, dW) go to oneDNN (float32) or ATen: gemm_once().
// The MKL and oneDNN entry points are weak references: null where a torch build lacks them, and the product
// then falls back to ATen, so the extension loads against any torch.
//
// Arguments (all strided 2-D views, row stride any, column stride 1 except as noted):
//   Product::init(weight (k, n), rows m)   weight may be a transposed view (column stride != 1); read, and
//                                          (MKL) copied into a packed buffer owned by the Product
//   Product::run(out (m, n), a (m, k), accumulate)   out = a @ weight (+ out); out must not alias a or weight
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>

#include <cstddef>
#include <type_traits>

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

enum class Backend : int { kAuto = -1, kATen = 0, kMklPacked = 1, kOneDnn = 2 };
Backend& forced_backend();   // kAuto unless a test or benchmark forces one (the module's _set_backend)

constexpr double kOneDnnFlops = 67108864.0;   // 2^26: per-step products from (64, 512) x (512, 1024) up
constexpr double kOneDnnOnceFlops = 4194304.0;  // 2^22: once-per-window products (projection, gradients)
constexpr double kSerialFlops = 2097152.0;    // 2^21: below this, MKL runs the product on one thread

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
// them (10-15% faster than MKL at these shapes, measured), else ATen.
inline void gemm_once(at::Tensor out, const at::Tensor& a, const at::Tensor& b, bool accumulate) {
  const double flops = 2.0 * a.size(0) * a.size(1) * b.size(1);
  const Backend forced = forced_backend();
  if (out.scalar_type() == at::kFloat && onednn_available() && flops >= kOneDnnOnceFlops &&
      (forced == Backend::kAuto || forced == Backend::kOneDnn)) {
    at::native::mkldnn_matmul(a, b, out, accumulate ? 1.0f : 0.0f, 1.0f);
  } else {
    gemm(out, a, b, accumulate);
  }
}

inline Backend choose_backend(bool is_float, double flops) {
  const bool mkl = cblas_sgemm_pack_get_size && cblas_sgemm_pack && cblas_sgemm_compute;
  const bool onednn = onednn_available();
  if (!is_float) return Backend::kATen;
  switch (forced_backend()) {
    case Backend::kATen: return Backend::kATen;
    case Backend::kMklPacked: return mkl ? Backend::kMklPacked : Backend::kATen;
    case Backend::kOneDnn: return onednn ? Backend::kOneDnn : Backend::kATen;
    case Backend::kAuto: break;
  }
  if (onednn && flops >= kOneDnnFlops) return Backend::kOneDnn;
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
    backend = choose_backend(std::is_same_v<S, float>, flops);
    serial = flops < kSerialFlops && MKL_Set_Num_Threads_Local != nullptr;
    if constexpr (std::is_same_v<S, float>) {
      if (backend != Backend::kMklPacked) return;
      constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112, kBMatrix = 162;
      const bool rowmajor = b.stride(1) == 1;
      if (!rowmajor && b.stride(0) != 1) {
        backend = Backend::kATen;
        return;
      }
      const size_t bytes = cblas_sgemm_pack_get_size(kBMatrix, m, n, k);
      packed = at::empty({static_cast<int64_t>(bytes / sizeof(float)) + 16}, b.options());
      cblas_sgemm_pack(kRowMajor, kBMatrix, rowmajor ? kNoTrans : kTrans, m, n, k, 1.0f, b.data_ptr<float>(),
                       static_cast<int>(rowmajor ? b.stride(0) : b.stride(1)), packed.data_ptr<float>());
    }
  }

  void run(at::Tensor out, const at::Tensor& a, bool accumulate) const {
    if constexpr (std::is_same_v<S, float>) {
      if (backend == Backend::kMklPacked) {
        constexpr int kRowMajor = 101, kNoTrans = 111, kPacked = 151;
        const int previous = serial ? MKL_Set_Num_Threads_Local(1) : 0;
        cblas_sgemm_compute(kRowMajor, kNoTrans, kPacked, m, n, k, a.data_ptr<float>(),
                            static_cast<int>(a.stride(0)), packed.data_ptr<float>(), n, accumulate ? 1.0f : 0.0f,
                            out.data_ptr<float>(), static_cast<int>(out.stride(0)));
        if (serial) MKL_Set_Num_Threads_Local(previous);
        return;
      }
      if (backend == Backend::kOneDnn) {
        at::native::mkldnn_matmul(a, b, out, accumulate ? 1.0f : 0.0f, 1.0f);
        return;
      }
    }
    gemm(out, a, b, accumulate);
  }
};

}  // namespace rnnkit
