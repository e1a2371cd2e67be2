// N-API surface of the GEMM kernels:
//   gemm(a, b, c, aDtype, cDtype, batch, m, n, k, transA, transB, lda, ldb, ldc,
//        offsetA, offsetB, offsetC, strideA, strideB, strideC, alpha, beta)
//     dtype codes 0 = float32 (Float32Array), 1 = bfloat16 (Uint16Array of bits). Every element the
//     call would touch is bounds-checked before any work starts.
//   peakFlops(seconds), peakFlopsBf16(seconds): measured GFLOP/s of FMA chains (fp32) and of the
//     instruction the bf16 kernel is built on (AMX tdpbf16ps at level amx, else vdpbf16ps) on all
//     pool threads; 0 where the level has no such instruction.
//   gemmIsa([name]): the level gemm dispatches to; with a name (generic | avx2 | avx512 | avx512bf16 |
//     amx | native) caps it further, for testing every path in one process.
//   gemmKernel(aDtype): {name, mr, nr, mc, kc, nc} of the kernel gemm uses for that operand dtype.
#include <node_api.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "cpu.h"
#include "gemm.h"
#include "napi_util.h"
#include "threadpool.h"

namespace graft {
namespace {

using gemm::DType;

const char* dtypeName(DType d) { return d == DType::BF16 ? "bfloat16" : "float32"; }

// Checks one operand: `rows` x `cols` stored matrices with row stride ld, `batch` of them `stride`
// apart, starting at `offset`, all inside an array of `length` elements.
bool checkOperand(Args& args, const char* name, DType dt, int64_t batch, int64_t rows, int64_t cols, int64_t ld,
                  int64_t offset, int64_t stride, size_t length, bool isOutput) {
  auto describe = [&] {
    return std::string(name) + " (" + dtypeName(dt) + ", " + std::to_string(batch) + " x [" + std::to_string(rows) +
           ", " + std::to_string(cols) + "], ld " + std::to_string(ld) + ", offset " + std::to_string(offset) +
           ", batch stride " + std::to_string(stride) + ")";
  };
  if (ld < 0 || offset < 0 || stride < 0) {
    args.fail(describe() + ": leading dimension, offset and batch stride must be >= 0");
    return false;
  }
  if (batch == 0 || rows == 0 || cols == 0) return true;
  if (rows > 1 && ld < cols) {
    args.fail(describe() + ": leading dimension must be >= the row length " + std::to_string(cols));
    return false;
  }
  // Output matrices must not alias one another (they may interleave, e.g. ld = batch * cols with
  // stride = cols); a zero stride is the one aliasing that can be told cheaply and for sure.
  if (isOutput && batch > 1 && stride == 0) {
    args.fail(describe() + ": the output's batch stride must not be 0 (every matrix would write the same elements)");
    return false;
  }
  const __int128 span = static_cast<__int128>(rows - 1) * ld + cols;  // elements of one matrix
  const __int128 end = static_cast<__int128>(offset) + static_cast<__int128>(batch - 1) * stride + span;
  if (end > static_cast<__int128>(length)) {
    const std::string need = end > static_cast<__int128>(INT64_MAX) ? std::string("more than 2^63")
                                                                  : std::to_string(static_cast<long long>(end));
    args.fail(describe() + " needs " + need + " elements but the array has " + std::to_string(length));
    return false;
  }
  return true;
}

bool dtypeOf(Args& args, int64_t code, const char* what, DType* out) {
  if (code == 0) *out = DType::F32;
  else if (code == 1) *out = DType::BF16;
  else {
    args.fail(std::string(what) + " dtype code must be 0 (float32) or 1 (bfloat16), got " + std::to_string(code));
    return false;
  }
  return true;
}

const void* typedData(Args& args, size_t i, DType dt, const char* name, size_t* length) {
  ArrayArg arr = args.array(i);
  if (!args.ok()) return nullptr;
  const napi_typedarray_type want = dt == DType::BF16 ? napi_uint16_array : napi_float32_array;
  if (arr.type != want) {
    args.fail(std::string(name) + " must be a " + (dt == DType::BF16 ? "Uint16Array (bfloat16 bits)" : "Float32Array"));
    return nullptr;
  }
  *length = arr.length;
  return arr.data;
}

napi_value Gemm(napi_env env, napi_callback_info info) {
  Args args(env, info, "gemm", 22);
  if (!args.ok()) return undefinedValue(env);
  DType ab, cd;
  if (!dtypeOf(args, args.integer(3), "operand", &ab) || !args.ok()) return undefinedValue(env);
  if (!dtypeOf(args, args.integer(4), "output", &cd) || !args.ok()) return undefinedValue(env);
  size_t lenA = 0, lenB = 0, lenC = 0;
  const void* a = typedData(args, 0, ab, "A", &lenA);
  const void* b = typedData(args, 1, ab, "B", &lenB);
  void* c = const_cast<void*>(typedData(args, 2, cd, "C", &lenC));
  gemm::Problem p{};
  p.batch = args.integer(5);
  p.m = args.integer(6);
  p.n = args.integer(7);
  p.k = args.integer(8);
  p.transA = args.boolean(9);
  p.transB = args.boolean(10);
  p.lda = args.integer(11);
  p.ldb = args.integer(12);
  p.ldc = args.integer(13);
  const int64_t offA = args.integer(14), offB = args.integer(15), offC = args.integer(16);
  p.strideA = args.integer(17);
  p.strideB = args.integer(18);
  p.strideC = args.integer(19);
  p.alpha = static_cast<float>(args.number(20));
  p.beta = static_cast<float>(args.number(21));
  if (!args.ok()) return undefinedValue(env);

  const int64_t limit = int64_t(1) << 40;
  if (p.batch < 0 || p.m < 0 || p.n < 0 || p.k < 0 || p.batch > limit || p.m > limit || p.n > limit || p.k > limit) {
    args.fail("batch, m, n, k must be in [0, 2^40], got " + std::to_string(p.batch) + ", " + std::to_string(p.m) +
              ", " + std::to_string(p.n) + ", " + std::to_string(p.k));
    return undefinedValue(env);
  }
  if (!checkOperand(args, "A", ab, p.batch, p.transA ? p.k : p.m, p.transA ? p.m : p.k, p.lda, offA, p.strideA, lenA,
                    false) ||
      !checkOperand(args, "B", ab, p.batch, p.transB ? p.n : p.k, p.transB ? p.k : p.n, p.ldb, offB, p.strideB, lenB,
                    false) ||
      !checkOperand(args, "C", cd, p.batch, p.m, p.n, p.ldc, offC, p.strideC, lenC, true))
    return undefinedValue(env);

  const size_t abBytes = ab == DType::BF16 ? 2 : 4, cBytes = cd == DType::BF16 ? 2 : 4;
  p.a = static_cast<const char*>(a) + offA * abBytes;
  p.b = static_cast<const char*>(b) + offB * abBytes;
  p.c = static_cast<char*>(c) + offC * cBytes;
  p.ab = ab;
  p.cd = cd;
  gemm::run(p, gemm::activeLevel());
  return undefinedValue(env);
}

// Runs `chunk` on every pool thread for about `seconds` and sums the per-thread rates (GFLOP/s).
double measurePeak(double seconds, double (*chunk)(int64_t)) {
  std::vector<double> rates(static_cast<size_t>(numThreads()), 0.0);
  parallelRun([&](int t, int) {
    using Clock = std::chrono::steady_clock;
    chunk(1 << 14);  // warm up: clocks ramp, the upper halves of the vector units power on
    const auto t0 = Clock::now();
    double flops = 0, elapsed = 0;
    do {
      flops += chunk(1 << 15);
      elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    } while (elapsed < seconds);
    rates[static_cast<size_t>(t)] = flops / elapsed;
  });
  double total = 0;
  for (double r : rates) total += r;
  return total / 1e9;
}

// The first argument if given and not null/undefined, else nullptr.
napi_value optionalArg(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1] = {nullptr};
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 1) return nullptr;
  napi_valuetype t;
  napi_typeof(env, argv[0], &t);
  return t == napi_null || t == napi_undefined ? nullptr : argv[0];
}

// peakFlops([seconds]): default 0.2 s, at most 10 s.
bool secondsArg(napi_env env, napi_callback_info info, const char* fn, double* seconds) {
  *seconds = 0.2;
  napi_value v = optionalArg(env, info);
  if (!v) return true;
  if (napi_get_value_double(env, v, seconds) != napi_ok || !(*seconds > 0)) {
    napi_throw_error(env, nullptr, (std::string(fn) + ": seconds must be a positive number").c_str());
    return false;
  }
  if (*seconds > 10) *seconds = 10;
  return true;
}

napi_value PeakFlops(napi_env env, napi_callback_info info) {
  double s;
  if (!secondsArg(env, info, "peakFlops", &s)) return undefinedValue(env);
  const int level = static_cast<int>(gemm::activeLevel());
  double (*chunk)(int64_t) = nullptr;
  if (level >= static_cast<int>(gemm::Level::Avx512)) chunk = gemm::peakChunkAvx512;
  else if (level == static_cast<int>(gemm::Level::Avx2)) chunk = gemm::peakChunkAvx2;
  return numberValue(env, chunk ? measurePeak(s, chunk) : 0.0);
}

napi_value PeakFlopsBf16(napi_env env, napi_callback_info info) {
  double s;
  if (!secondsArg(env, info, "peakFlopsBf16", &s)) return undefinedValue(env);
  const gemm::Level level = gemm::activeLevel();
  double (*chunk)(int64_t) = level == gemm::Level::Amx          ? gemm::peakChunkAmx
                             : level == gemm::Level::Avx512Bf16 ? gemm::peakChunkAvx512Bf16
                                                                : nullptr;
  return numberValue(env, chunk ? measurePeak(s, chunk) : 0.0);
}

napi_value GemmIsa(napi_env env, napi_callback_info info) {
  if (napi_value v = optionalArg(env, info)) {
    char buf[32] = {0};
    size_t len = 0;
    if (napi_get_value_string_utf8(env, v, buf, sizeof buf, &len) != napi_ok) {
      napi_throw_error(env, nullptr, "gemmIsa: the ISA must be a string");
      return undefinedValue(env);
    }
    using gemm::Level;
    if (!std::strcmp(buf, "generic")) gemm::capLevel(Level::Generic);
    else if (!std::strcmp(buf, "avx2")) gemm::capLevel(Level::Avx2);
    else if (!std::strcmp(buf, "avx512")) gemm::capLevel(Level::Avx512);
    else if (!std::strcmp(buf, "avx512bf16")) gemm::capLevel(Level::Avx512Bf16);
    else if (!std::strcmp(buf, "amx") || !std::strcmp(buf, "native")) gemm::capLevel(Level::Amx);
    else {
      const std::string msg =
          std::string("gemmIsa: unknown ISA '") + buf + "' (generic, avx2, avx512, avx512bf16, amx, native)";
      napi_throw_error(env, nullptr, msg.c_str());
      return undefinedValue(env);
    }
  }
  napi_value out;
  napi_create_string_utf8(env, gemm::levelName(gemm::activeLevel()), NAPI_AUTO_LENGTH, &out);
  return out;
}

napi_value GemmKernel(napi_env env, napi_callback_info info) {
  Args args(env, info, "gemmKernel", 1);
  DType ab = DType::F32;
  if (!dtypeOf(args, args.integer(0), "operand", &ab) || !args.ok()) return undefinedValue(env);
  const gemm::KernelSet& ks = gemm::kernelsFor(gemm::activeLevel(), ab);
  napi_value obj, name;
  napi_create_object(env, &obj);
  napi_create_string_utf8(env, ks.name, NAPI_AUTO_LENGTH, &name);
  napi_set_named_property(env, obj, "name", name);
  napi_set_named_property(env, obj, "mr", numberValue(env, ks.mr));
  napi_set_named_property(env, obj, "nr", numberValue(env, ks.nr));
  napi_set_named_property(env, obj, "mc", numberValue(env, static_cast<double>(ks.mc)));
  napi_set_named_property(env, obj, "kc", numberValue(env, static_cast<double>(ks.kc)));
  napi_set_named_property(env, obj, "nc", numberValue(env, static_cast<double>(ks.nc)));
  return obj;
}

}  // namespace

void registerGemm(napi_env env, napi_value exports) {
  // Start the thread pool at load time, so that its workers are up and waiting before the first
  // GEMM posts a job.
  (void)numThreads();
  defineFunction(env, exports, "gemm", Gemm);
  defineFunction(env, exports, "peakFlops", PeakFlops);
  defineFunction(env, exports, "peakFlopsBf16", PeakFlopsBf16);
  defineFunction(env, exports, "gemmIsa", GemmIsa);
  defineFunction(env, exports, "gemmKernel", GemmKernel);
}

}  // namespace graft
