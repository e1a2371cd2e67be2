// N-API bindings of the decode-path kernels (quant.h): qmatmul (float activations x Q8_0 / Q4_0
// weights), gemv (float32 / bf16 matmul with few rows, weights streamed once), streamRead (a memory
// bandwidth probe for bench/decode.ts) and quantInfo. Kernels are chosen once by CPU features;
// work is split over the weight rows N on the thread pool.
#include <cpuid.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "cpu.h"
#include "napi_util.h"
#include "ops_kernels.h"
#include "quant.h"
#include "quant_scalar.h"
#include "threadpool.h"

namespace graft {
namespace quant {
namespace {

bool cpuHasVnni() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return c & (1u << 11);  // AVX512_VNNI
}

// The kernel sets this CPU can run, best last (GRAFT_ISA caps them), and the one in use.
const std::vector<Kernels>& available() {
  static const std::vector<Kernels> sets = [] {
    std::vector<Kernels> v;
    Kernels k{};
    fillGeneric(k);
    v.push_back(k);
    const Isa isa = detectIsa();
    if (static_cast<int>(isa) >= static_cast<int>(Isa::Avx2)) {
      fillAvx2(k);
      v.push_back(k);
    }
    if (static_cast<int>(isa) >= static_cast<int>(Isa::Avx512) && cpuHasVnni()) {
      fillAvx512(k);
      v.push_back(k);
      if (isa == Isa::Avx512Bf16) {
        fillAvx512Bf16(k);
        v.push_back(k);
      }
    }
    return v;
  }();
  return sets;
}

std::atomic<int> active{-1};

const Kernels& kernels() {
  const int i = active.load(std::memory_order_relaxed);
  const auto& sets = available();
  return i < 0 ? sets.back() : sets[static_cast<size_t>(i)];
}

// Splits rows [0, N) over the pool: threads claim chunks of rows (multiples of 16) from a shared
// counter, guided (parallelGuided: chunks shrink as the rows run out), so a thread the OS preempts
// (the machine may be shared) holds up the others by little. Small problems run on the caller's thread.
template <typename F>
void forRows(int64_t N, int64_t workPerRow, const F& fn) {
  constexpr int64_t kUnit = 16;
  const int nt = numThreads();
  if (nt == 1 || N * workPerRow < (1 << 16) || N <= kUnit) {
    fn(0, N);
    return;
  }
  parallelGuided((N + kUnit - 1) / kUnit, [&](int64_t u0, int64_t u1) { fn(u0 * kUnit, std::min(N, u1 * kUnit)); });
}

// x row (float32 or bf16) -> int8 blocks, float scales and block sums (quant.h's rule), and with
// q4 also the blocks in q4 order (see QActs).
void quantizeActs(const void* x, bool bf16, int64_t M, int64_t K, int8_t* q, float* d, int32_t* s, int8_t* q4) {
  const int64_t nb = K / kBlock;
  float buf[kBlock];
  for (int64_t m = 0; m < M; m++) {
    for (int64_t b = 0; b < nb; b++) {
      const int64_t base = m * K + b * kBlock;
      float amax = 0.0f;
      for (int j = 0; j < kBlock; j++) {
        buf[j] = bf16 ? qBf16ToF32(static_cast<const uint16_t*>(x)[base + j]) : static_cast<const float*>(x)[base + j];
        amax = std::max(amax, std::fabs(buf[j]));
      }
      const float dd = amax / 127.0f;
      const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
      int32_t sum = 0;
      for (int j = 0; j < kBlock; j++) {
        const int32_t v = static_cast<int32_t>(std::nearbyint(buf[j] * id));  // round half to even
        q[base + j] = static_cast<int8_t>(v);
        sum += v;
      }
      d[m * nb + b] = dd;
      s[m * nb + b] = sum;
    }
    if (!q4) continue;
    const int8_t* src = q + m * K;
    int8_t* dst = q4 + m * K;
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
      const int8_t* s0 = src + b * kBlock;
      int8_t* o = dst + b * kBlock;
      for (int j = 0; j < 4; j++) {
        std::copy(s0 + j * kBlock, s0 + j * kBlock + 16, o + j * 16);
        std::copy(s0 + j * kBlock + 16, s0 + (j + 1) * kBlock, o + 64 + j * 16);
      }
    }
    if (b < nb) std::copy(src + b * kBlock, src + K, dst + b * kBlock);
  }
}

bool needLength(Args& a, const ArrayArg& arr, int64_t need, const char* name) {
  if (a.ok() && static_cast<int64_t>(arr.length) < need)
    a.fail(std::string(name) + " has " + std::to_string(arr.length) + " elements, needs " + std::to_string(need));
  return a.ok();
}

ArrayArg typedArg(Args& a, size_t i, napi_typedarray_type want, const char* name, const char* typeName) {
  ArrayArg arr = a.array(i);
  if (a.ok() && arr.type != want) a.fail(std::string(name) + " must be a " + typeName);
  return arr;
}

ArrayArg floatArg(Args& a, size_t i, int64_t code, const char* name) {
  return code == 1 ? typedArg(a, i, napi_uint16_array, name, "Uint16Array (bfloat16)")
                   : typedArg(a, i, napi_float32_array, name, "Float32Array");
}

// Rounds n float32 values to bfloat16 in place (round to nearest even, as every bf16 store here).
void roundToBf16(float* y, int64_t n) {
  const OpsKernels& ok = graft::kernels();
  uint16_t tmp[512];
  for (int64_t i = 0; i < n; i += 512) {
    const int64_t c = std::min<int64_t>(512, n - i);
    ok.castRow(y + i, DT::F32, 1, tmp, DT::BF16, 1, c);
    ok.castRow(tmp, DT::BF16, 1, y + i, DT::F32, 1, c);
  }
}

int64_t codeArg(Args& a, size_t i, int64_t max, const char* what) {
  const int64_t c = a.integer(i);
  if (a.ok() && (c < 0 || c > max)) a.fail("unsupported " + std::string(what) + " code " + std::to_string(c));
  return c;
}

// qmatmul(x, xDtype, qs, scales, out, outDtype, M, N, K, type): out[M, N] = x[M, K] @ W[N, K]^T.
napi_value QMatmul(napi_env env, napi_callback_info info) {
  Args a(env, info, "qmatmul", 10);
  const int64_t xc = codeArg(a, 1, 1, "dtype"), oc = codeArg(a, 5, 1, "dtype");
  const int64_t M = a.integer(6), N = a.integer(7), K = a.integer(8);
  const int64_t type = codeArg(a, 9, 1, "quant type");
  if (a.ok() && (M < 0 || N < 0 || K < 0)) a.fail("M, N, K must be >= 0, got " + std::to_string(M) + ", " + std::to_string(N) + ", " + std::to_string(K));
  if (a.ok() && K % kBlock != 0) a.fail("K = " + std::to_string(K) + " is not a multiple of the block size 32");
  ArrayArg x = floatArg(a, 0, xc, "x");
  ArrayArg qs = typedArg(a, 2, napi_uint8_array, "qs", "Uint8Array");
  ArrayArg sc = typedArg(a, 3, napi_uint16_array, "scales", "Uint16Array (float16)");
  ArrayArg out = floatArg(a, 4, oc, "out");
  needLength(a, x, M * K, "x");
  needLength(a, qs, type == 0 ? N * K : N * K / 2, "qs");
  needLength(a, sc, N * (K / kBlock), "scales");
  needLength(a, out, M * N, "out");
  if (!a.ok() || M == 0 || N == 0) return undefinedValue(env);
  if (K == 0) {
    for (int64_t i = 0; i < M * N; i++) qStore(out.data, i, oc == 1, 0.0f);
    return undefinedValue(env);
  }
  const int64_t nb = K / kBlock;
  std::vector<int8_t> q(static_cast<size_t>(M * K));
  std::vector<float> d(static_cast<size_t>(M * nb));
  std::vector<int32_t> s(static_cast<size_t>(M * nb));
  std::vector<int8_t> q4(type == 1 ? static_cast<size_t>(M * K) : 0);
  quantizeActs(x.data, xc == 1, M, K, q.data(), d.data(), s.data(), type == 1 ? q4.data() : nullptr);
  const QActs acts{q.data(), d.data(), s.data(), M, K, type == 1 ? q4.data() : nullptr};
  const Kernels& k = kernels();
  const QDotFn fn = type == 0 ? k.q8 : k.q4;
  const uint8_t* wq = static_cast<const uint8_t*>(qs.data);
  const uint16_t* wd = static_cast<const uint16_t*>(sc.data);
  forRows(N, M * K, [&](int64_t n0, int64_t n1) { fn(acts, wq, wd, n0, n1, out.data, N, oc == 1); });
  return undefinedValue(env);
}

// gemv(x, w, y, dtype, yDtype, M, N, K, ldx, ldw, ldy, offX, offW, offY, alpha):
// y[m, n] = alpha * sum_k x[m, k] w[n, k] for the float32 / bf16 decode matmuls (beta = 0). yDtype 2:
// y is float32 and holds each value rounded to bfloat16 (what a bf16 y cast to float32 holds), as a
// decode step's logits want them: no bf16 copy to widen afterwards.
napi_value Gemv(napi_env env, napi_callback_info info) {
  Args a(env, info, "gemv", 15);
  const int64_t dc = codeArg(a, 3, 1, "dtype"), yc = codeArg(a, 4, 2, "dtype");
  const int64_t M = a.integer(5), N = a.integer(6), K = a.integer(7);
  const int64_t ldx = a.integer(8), ldw = a.integer(9), ldy = a.integer(10);
  const int64_t offX = a.integer(11), offW = a.integer(12), offY = a.integer(13);
  const double alpha = a.number(14);
  if (a.ok() && (M < 0 || N < 0 || K < 0 || ldx < K || ldw < K || ldy < N || offX < 0 || offW < 0 || offY < 0))
    a.fail("bad sizes: M " + std::to_string(M) + ", N " + std::to_string(N) + ", K " + std::to_string(K) + ", ldx " +
           std::to_string(ldx) + ", ldw " + std::to_string(ldw) + ", ldy " + std::to_string(ldy));
  ArrayArg x = floatArg(a, 0, dc, "x");
  ArrayArg w = floatArg(a, 1, dc, "w");
  ArrayArg y = floatArg(a, 2, yc == 1 ? 1 : 0, "y");
  if (a.ok() && M > 0 && N > 0) {
    needLength(a, x, offX + (M - 1) * ldx + K, "x");
    needLength(a, w, offW + (N - 1) * ldw + K, "w");
    needLength(a, y, offY + (M - 1) * ldy + N, "y");
  }
  if (!a.ok() || M == 0 || N == 0) return undefinedValue(env);
  const size_t es = dc == 1 ? 2 : 4;
  const char* xp = static_cast<const char*>(x.data) + offX * es;
  const char* wp = static_cast<const char*>(w.data) + offW * es;
  char* yp = static_cast<char*>(y.data) + offY * (yc == 1 ? 2 : 4);
  const Kernels& k = kernels();
  const GemvFn fn = dc == 1 ? k.gemvBf16 : k.gemvF32;
  const float al = static_cast<float>(alpha);
  forRows(N, M * K, [&](int64_t n0, int64_t n1) {
    fn(xp, ldx, wp, ldw, M, K, n0, n1, yp, ldy, yc == 1, al);
    if (yc == 2) {
      for (int64_t m = 0; m < M; m++) roundToBf16(reinterpret_cast<float*>(yp) + m * ldy + n0, n1 - n0);
    }
  });
  return undefinedValue(env);
}

// NF4 arguments: packed codes for n elements, absmax for ceil(n / blockSize) blocks.
bool nf4Args(Args& a, const ArrayArg& packed, const ArrayArg& absmax, int64_t n, int64_t blockSize) {
  if (a.ok() && (blockSize < 2 || blockSize % 2 != 0)) a.fail("blockSize must be an even number >= 2, got " + std::to_string(blockSize));
  if (!a.ok()) return false;
  needLength(a, packed, (n + 1) / 2, "packed");
  needLength(a, absmax, (n + blockSize - 1) / blockSize, "absmax");
  return a.ok();
}

// nf4Dequantize(packed, absmax, blockSize, n, out, outDtype): out[i] = codebook[code i] * absmax[i / blockSize].
napi_value Nf4Dequantize(napi_env env, napi_callback_info info) {
  Args a(env, info, "nf4Dequantize", 6);
  ArrayArg packed = typedArg(a, 0, napi_uint8_array, "packed", "Uint8Array");
  ArrayArg absmax = typedArg(a, 1, napi_float32_array, "absmax", "Float32Array");
  const int64_t blockSize = a.integer(2), n = a.integer(3);
  const int64_t oc = codeArg(a, 5, 1, "dtype");
  ArrayArg out = floatArg(a, 4, oc, "out");
  if (a.ok() && n < 0) a.fail("n must be >= 0");
  if (!nf4Args(a, packed, absmax, n, blockSize) || !needLength(a, out, n, "out")) return undefinedValue(env);
  const Kernels& k = kernels();
  const uint8_t* p = static_cast<const uint8_t*>(packed.data);
  const float* am = static_cast<const float*>(absmax.data);
  constexpr int64_t kChunk = 4096;  // elements per work item (even, a multiple of 16)
  parallelFor((n + kChunk - 1) / kChunk, 16, [&](int64_t c0, int64_t c1, int) {
    float buf[kChunk];
    for (int64_t c = c0; c < c1; c++) {
      const int64_t i0 = c * kChunk, cnt = std::min(kChunk, n - i0);
      if (oc == 0) {
        k.nf4Decode(p, am, blockSize, i0, cnt, static_cast<float*>(out.data) + i0);
      } else {
        k.nf4Decode(p, am, blockSize, i0, cnt, buf);
        uint16_t* o = static_cast<uint16_t*>(out.data) + i0;
        for (int64_t j = 0; j < cnt; j++) o[j] = qF32ToBf16(buf[j]);
      }
    }
  });
  return undefinedValue(env);
}

// nf4Matmul(x, xDtype, packed, absmax, out, M, N, K, blockSize): out[M, N] = x[M, K] @ W^T with W
// [N, K] in NF4 (row-major, flattened blocks). Each weight row is decoded once into float32 and
// dotted with every row of x (float32 accumulation).
napi_value Nf4Matmul(napi_env env, napi_callback_info info) {
  Args a(env, info, "nf4Matmul", 9);
  const int64_t xc = codeArg(a, 1, 1, "dtype");
  const int64_t M = a.integer(5), N = a.integer(6), K = a.integer(7), blockSize = a.integer(8);
  if (a.ok() && (M < 0 || N < 0 || K < 0)) a.fail("M, N, K must be >= 0");
  ArrayArg x = floatArg(a, 0, xc, "x");
  ArrayArg packed = typedArg(a, 2, napi_uint8_array, "packed", "Uint8Array");
  ArrayArg absmax = typedArg(a, 3, napi_float32_array, "absmax", "Float32Array");
  ArrayArg out = floatArg(a, 4, xc, "out");
  needLength(a, x, M * K, "x");
  needLength(a, out, M * N, "out");
  if (!nf4Args(a, packed, absmax, N * K, blockSize) || M == 0 || N == 0) return undefinedValue(env);
  std::vector<float> xf;
  const float* xp = static_cast<const float*>(x.data);
  if (xc == 1) {
    xf.resize(static_cast<size_t>(M * K));
    for (int64_t i = 0; i < M * K; i++) xf[i] = qBf16ToF32(static_cast<const uint16_t*>(x.data)[i]);
    xp = xf.data();
  }
  const Kernels& k = kernels();
  const uint8_t* p = static_cast<const uint8_t*>(packed.data);
  const float* am = static_cast<const float*>(absmax.data);
  forRows(N, M * K, [&](int64_t n0, int64_t n1) {
    std::vector<float> row(static_cast<size_t>(K));
    for (int64_t n = n0; n < n1; n++) {
      k.nf4Decode(p, am, blockSize, n * K, K, row.data());
      for (int64_t m = 0; m < M; m++) qStore(out.data, m * N + n, xc == 1, k.dot(xp + m * K, row.data(), K));
    }
  });
  return undefinedValue(env);
}

// streamRead(buffer: Uint8Array, reps): reads the whole buffer `reps` times with every pool thread
// (each its own contiguous slice of whole 4 KiB chunks) and returns the best time of one pass in seconds.
napi_value StreamRead(napi_env env, napi_callback_info info) {
  Args a(env, info, "streamRead", 2);
  ArrayArg buf = typedArg(a, 0, napi_uint8_array, "buffer", "Uint8Array");
  const int64_t reps = a.integer(1);
  if (a.ok() && reps < 1) a.fail("reps must be >= 1");
  if (!a.ok()) return undefinedValue(env);
  const uint8_t* p = static_cast<const uint8_t*>(buf.data);
  const int64_t chunks = static_cast<int64_t>(buf.length) / 4096;  // whole 4 KiB chunks, split over threads
  const StreamFn stream = kernels().stream;
  double best = 1e30;
  std::atomic<uint64_t> sink{0};
  for (int64_t r = 0; r < reps; r++) {
    const auto t0 = std::chrono::steady_clock::now();
    parallelRun([&](int t, int nt) {
      const int64_t c0 = chunks * t / nt, c1 = chunks * (t + 1) / nt;
      sink.fetch_xor(stream(p + c0 * 4096, (c1 - c0) * 4096), std::memory_order_relaxed);
    });
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  (void)sink;
  return numberValue(env, best);
}

// quantInfo() -> { kernels: active set, available: every set this CPU runs, best last }.
napi_value QuantInfo(napi_env env, napi_callback_info) {
  napi_value obj, name, list;
  napi_create_object(env, &obj);
  napi_create_string_utf8(env, kernels().name, NAPI_AUTO_LENGTH, &name);
  napi_set_named_property(env, obj, "kernels", name);
  napi_create_array(env, &list);
  const auto& sets = available();
  for (size_t i = 0; i < sets.size(); i++) {
    napi_value n;
    napi_create_string_utf8(env, sets[i].name, NAPI_AUTO_LENGTH, &n);
    napi_set_element(env, list, static_cast<uint32_t>(i), n);
  }
  napi_set_named_property(env, obj, "available", list);
  return obj;
}

// quantUseKernels(name | null): picks one of quantInfo().available (null: the best) — for tests.
napi_value QuantUseKernels(napi_env env, napi_callback_info info) {
  Args a(env, info, "quantUseKernels", 1);
  if (!a.ok()) return undefinedValue(env);
  if (a.isNull(0)) {
    active.store(-1);
    return undefinedValue(env);
  }
  size_t len = 0;
  char buf[64];
  napi_value v;
  size_t argc = 1;
  napi_get_cb_info(env, info, &argc, &v, nullptr, nullptr);
  if (napi_get_value_string_utf8(env, v, buf, sizeof buf, &len) != napi_ok) {
    a.fail("argument 0 must be a kernel set name or null");
    return undefinedValue(env);
  }
  const auto& sets = available();
  for (size_t i = 0; i < sets.size(); i++)
    if (std::string(sets[i].name) == buf) {
      active.store(static_cast<int>(i));
      return undefinedValue(env);
    }
  a.fail(std::string("unknown or unavailable kernel set \"") + buf + "\"");
  return undefinedValue(env);
}

}  // namespace

const Kernels& activeKernels() { return kernels(); }

void quantizeActivations(const void* x, bool bf16, int64_t M, int64_t K, int8_t* q, float* d, int32_t* s, int8_t* q4) {
  quantizeActs(x, bf16, M, K, q, d, s, q4);
}

}  // namespace quant

void registerQuant(napi_env env, napi_value exports) {
  defineFunction(env, exports, "qmatmul", quant::QMatmul);
  defineFunction(env, exports, "gemv", quant::Gemv);
  defineFunction(env, exports, "streamRead", quant::StreamRead);
  defineFunction(env, exports, "nf4Dequantize", quant::Nf4Dequantize);
  defineFunction(env, exports, "nf4Matmul", quant::Nf4Matmul);
  defineFunction(env, exports, "quantInfo", quant::QuantInfo);
  defineFunction(env, exports, "quantUseKernels", quant::QuantUseKernels);
}

}  // namespace graft
