// The add-on's entry: each kernel family registers its functions. Registration functions are weak so
// that a partial build (one family) still links, which keeps kernel work independent.
#include <node_api.h>

#include <cstdlib>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
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

static napi_value Init(napi_env env, napi_value exports) {
  defineFunction(env, exports, "info", Info);
  defineFunction(env, exports, "setThreads", SetThreads);
  if (registerGemm) registerGemm(env, exports);
  if (registerOps) registerOps(env, exports);
  if (registerQuant) registerQuant(env, exports);
  if (registerDecode) registerDecode(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
