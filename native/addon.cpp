// The add-on's entry: each kernel family registers its functions. Registration functions are weak so
// that a partial build (one family) still links, which keeps kernel work independent.
#include <node_api.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "cpu.h"
#include "napi_util.h"
#include "threadpool.h"

namespace graft {
void registerGemm(napi_env env, napi_value exports) __attribute__((weak));
void registerOps(napi_env env, napi_value exports) __attribute__((weak));
void registerQuant(napi_env env, napi_value exports) __attribute__((weak));
void registerDecode(napi_env env, napi_value exports) __attribute__((weak));
}  // namespace graft

using namespace graft;

// Tensor storage is malloc'd by Node's ArrayBuffer allocator. glibc serves blocks over its mmap
// threshold (at most 32 MB) with fresh mmaps and unmaps them on free, so every training step re-faults
// its large buffers page by page (logits, MLP activations: ~100k faults/step on Qwen2.5-0.5B). Serving
// everything from the heap, trimmed only past kTrimBytes of free top, lets a step reuse the previous
// step's memory. GRAFT_MALLOC_REUSE=0 keeps glibc's defaults. Returns whether the tuning applies.
static bool tuneMalloc() {
#if defined(__GLIBC__)
  const char* env = std::getenv("GRAFT_MALLOC_REUSE");
  if (env && std::strcmp(env, "0") == 0) return false;
  constexpr int kTrimBytes = 1 << 30;
  return mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, kTrimBytes) == 1;
#else
  return false;
#endif
}
static const bool kMallocReuse = tuneMalloc();

static napi_value Info(napi_env env, napi_callback_info) {
  napi_value obj, isa, threads, reuse;
  napi_create_object(env, &obj);
  napi_get_boolean(env, kMallocReuse, &reuse);
  napi_set_named_property(env, obj, "mallocReuse", reuse);
  napi_create_string_utf8(env, isaName(detectIsa()), NAPI_AUTO_LENGTH, &isa);
  napi_create_int32(env, numThreads(), &threads);
  napi_set_named_property(env, obj, "isa", isa);
  napi_set_named_property(env, obj, "threads", threads);
  return obj;
}

static napi_value SetThreads(napi_env env, napi_callback_info info) {
  Args a(env, info, "setThreads", 1);
  int64_t n = a.integer(0);
  if (a.ok()) {
    if (n < 1 || n > 1024) a.fail("thread count must be in [1, 1024], got " + std::to_string(n));
    else setNumThreads(static_cast<int>(n));
  }
  return undefinedValue(env);
}

// hugePageArray(raw: Uint8Array, bytes, zero) -> offset: places an array of `bytes` bytes inside raw
// (a malloc'd block; bytes + 2 MiB - 16 is long enough for a 16-byte aligned one) at its first 2 MiB
// boundary and backs the array's whole 2 MiB pages with transparent huge pages (madvise
// MADV_HUGEPAGE: pages not yet touched fault in huge). Heap memory that malloc reuses keeps the 4 KiB
// pages it has, except in an array to be zeroed: its whole huge pages are given back (MADV_DONTNEED)
// instead of cleared, and fault in again zeroed and huge. Under the usual THP mode "madvise" memory
// gets huge pages only this way, and on a VM the TLB misses of 4 KiB pages can cost a streaming read a
// quarter of its bandwidth (a decode step streams every weight). The slack before and after the array
// is never read or written, so its whole 4 KiB pages are given back too. Returns the array's offset in
// raw, or -1 when raw is too small.
static napi_value HugePageArray(napi_env env, napi_callback_info info) {
  Args a(env, info, "hugePageArray", 3);
  ArrayArg raw = a.array(0);
  const int64_t bytes = a.integer(1);
  const bool zero = a.boolean(2);
  if (a.ok() && raw.type != napi_uint8_array) a.fail("raw must be a Uint8Array");
  if (a.ok() && bytes < 0) a.fail("bytes must be >= 0, got " + std::to_string(bytes));
  if (!a.ok()) return undefinedValue(env);
  constexpr uintptr_t kHuge = uintptr_t(2) << 20, kPage = 4096;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(raw.data), end = begin + raw.length;
  const uintptr_t dst = (begin + kHuge - 1) & ~(kHuge - 1), dstEnd = dst + static_cast<uintptr_t>(bytes);
  if (dstEnd > end) return numberValue(env, -1);
  uintptr_t cleared = 0;  // bytes of the array already zero
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const uintptr_t headLo = (begin + kPage - 1) & ~(kPage - 1), tailLo = (dstEnd + kPage - 1) & ~(kPage - 1), tailHi = end & ~(kPage - 1);
  if (dst > headLo) madvise(reinterpret_cast<void*>(headLo), dst - headLo, MADV_DONTNEED);
  if (tailHi > tailLo) madvise(reinterpret_cast<void*>(tailLo), tailHi - tailLo, MADV_DONTNEED);
  const uintptr_t whole = static_cast<uintptr_t>(bytes) & ~(kHuge - 1);
  if (whole > 0) madvise(reinterpret_cast<void*>(dst), whole, MADV_HUGEPAGE);
  if (zero && whole > 0 && madvise(reinterpret_cast<void*>(dst), whole, MADV_DONTNEED) == 0) cleared = whole;
#endif
  if (zero) std::memset(reinterpret_cast<void*>(dst + cleared), 0, static_cast<size_t>(bytes) - cleared);
  return numberValue(env, static_cast<double>(dst - begin));
}

static napi_value Init(napi_env env, napi_value exports) {
  defineFunction(env, exports, "info", Info);
  defineFunction(env, exports, "setThreads", SetThreads);
  defineFunction(env, exports, "hugePageArray", HugePageArray);
  if (registerGemm) registerGemm(env, exports);
  if (registerOps) registerOps(env, exports);
  if (registerQuant) registerQuant(env, exports);
  if (registerDecode) registerDecode(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
