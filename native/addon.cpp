// The add-on's entry: each kernel family registers its functions. Registration functions are weak so
// that a partial build (one family) still links, which keeps kernel work independent.
#include <node_api.h>

#include "cpu.h"
#include "napi_util.h"
#include "threadpool.h"

namespace graft {
void registerGemm(napi_env env, napi_value exports) __attribute__((weak));
void registerOps(napi_env env, napi_value exports) __attribute__((weak));
void registerQuant(napi_env env, napi_value exports) __attribute__((weak));
}  // namespace graft

using namespace graft;

static napi_value Info(napi_env env, napi_callback_info) {
  napi_value obj, isa, threads;
  napi_create_object(env, &obj);
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
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
