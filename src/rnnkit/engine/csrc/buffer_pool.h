// The engine's large CPU buffers, kept when freed and handed out again to the next call that needs that size.
//
// Why: a training step allocates the same large tensors every time (the saved gates and states, layer norm's
// normalised values, the gradients' chunk buffers). glibc returns large freed blocks to the kernel (munmap, or a
// trim of the heap's top), so every step faults all their pages in again: at (35, 20, 200) a third of layer norm's
// backward (BENCHMARKS.md, "Layer norm: the allocator"). PyTorch's CUDA allocator caches blocks for the same
// reason; its CPU allocator doesn't. This pool does it for the engine's own tensors only, not the process's:
//   - blocks from 64 KiB (smaller ones stay on glibc's heap anyway), matched by size: a request takes the
//     smallest free block of at least its size and at most 1.25 times it (variable-length windows reuse too);
//   - at most RNNKIT_BUFFER_POOL_MB megabytes (default 256; 0 turns the pool off) are kept; past that the oldest
//     free blocks go back to glibc first. Blocks over a quarter of that aren't pooled: their faults cost little
//     beside the work on them, and each would push out many smaller blocks.
// The tensors are ordinary CPU tensors (from_blob with a deleter that returns the block); they can't be resized.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/impl/alloc_cpu.h>

#include <cstdlib>
#include <list>
#include <mutex>
#include <tuple>
#include <utility>

namespace rnnkit {
namespace buffer_pool {

constexpr size_t kMinBytes = size_t(1) << 16;

class Pool {
 public:
  Pool() {
    const char* mb = std::getenv("RNNKIT_BUFFER_POOL_MB");
    limit_ = (mb ? static_cast<size_t>(std::max(0L, std::strtol(mb, nullptr, 10))) : 256) << 20;
  }
  // Whether a block of `bytes` is pooled.
  bool takes(size_t bytes) const { return bytes >= kMinBytes && bytes <= limit_ / 4; }

  // A block of at least `bytes` (its real size in *got): a kept one when one fits, else a fresh one.
  void* take(size_t bytes, size_t* got) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto best = free_.end();
      for (auto it = free_.begin(); it != free_.end(); ++it)
        if (it->first >= bytes && it->first <= bytes + bytes / 4 && (best == free_.end() || it->first < best->first))
          best = it;
      if (best != free_.end()) {
        ++hits_;
        void* p = best->second;
        *got = best->first;
        held_ -= best->first;
        free_.erase(best);
        return p;
      }
      ++misses_;
    }
    *got = bytes;
    return c10::alloc_cpu(bytes);
  }

  // Keeps a freed block (newest last), then frees the oldest while more than the limit is kept.
  void give(void* p, size_t bytes) {
    std::list<std::pair<size_t, void*>> evicted;
    {
      std::lock_guard<std::mutex> lock(mu_);
      free_.emplace_back(bytes, p);
      held_ += bytes;
      while (held_ > limit_) {
        held_ -= free_.front().first;
        evicted.splice(evicted.end(), free_, free_.begin());
      }
    }
    for (auto& [n, q] : evicted) c10::free_cpu(q);
  }

  // (blocks kept, bytes kept, requests served from the pool, requests that allocated): for tests
  std::tuple<size_t, size_t, size_t, size_t> stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return {free_.size(), held_, hits_, misses_};
  }

 private:
  std::mutex mu_;
  std::list<std::pair<size_t, void*>> free_;   // (bytes, block), oldest first
  size_t held_ = 0, limit_ = 0, hits_ = 0, misses_ = 0;
};

inline Pool& pool() {
  static Pool* p = new Pool();   // never destroyed: tensors may outlive static destruction at exit
  return *p;
}

}  // namespace buffer_pool

// at::empty(size, opt), from the pool where it applies (large CPU tensors).
inline at::Tensor fresh(at::IntArrayRef size, const at::TensorOptions& opt) {
  const size_t bytes = static_cast<size_t>(c10::multiply_integers(size)) * opt.dtype().itemsize();
  buffer_pool::Pool& pool = buffer_pool::pool();
  if (!opt.device().is_cpu() || !pool.takes(bytes)) return at::empty(size, opt);
  size_t got = 0;
  void* block = pool.take(bytes, &got);
  return at::from_blob(block, size, [got](void* p) { buffer_pool::pool().give(p, got); }, opt);
}

// at::zeros(size, opt), from the pool where it applies.
inline at::Tensor fresh_zeros(at::IntArrayRef size, const at::TensorOptions& opt) {
  return fresh(size, opt).zero_();
}

}  // namespace rnnkit
