// N-API bindings of the NN kernels: softmax / log-softmax, cross-entropy, RMSNorm, LayerNorm, RoPE,
// embedding, attention and AdamW. Every typed array is checked against the sizes it is used with.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops_binding.h"

namespace graft {
namespace {


int64_t rowGrain(int64_t C) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(C, 1)); }

// softmax(x, y, dtype, N, C, log)
napi_value Softmax(napi_env env, napi_callback_info info) {
  Args a(env, info, "softmax", 6);
  DT dt = dtArg(a, 2);
  int64_t N = a.integer(3), C = a.integer(4);
  bool log = a.boolean(5);
  if (!nonNegative(a, {{"N", N}, {"C", C}})) return undefinedValue(env);
  const void* x = bufArg(a, 0, dt, N * C, "x");
  void* y = bufArg(a, 1, dt, N * C, "y");
  if (!a.ok() || C == 0) return undefinedValue(env);
  const OpsKernels& k = kernels();
  parallelFor(N, rowGrain(C), [&](int64_t r0, int64_t r1, int) { k.softmaxRows(x, y, dt, r0, r1, C, log); });
  return undefinedValue(env);
}

// softmaxBackward(y, gy, gx, dtype, N, C, log)
napi_value SoftmaxBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, "softmaxBackward", 7);
  DT dt = dtArg(a, 3);
  int64_t N = a.integer(4), C = a.integer(5);
  bool log = a.boolean(6);
  if (!nonNegative(a, {{"N", N}, {"C", C}})) return undefinedValue(env);
  const void* y = bufArg(a, 0, dt, N * C, "y");
  const void* gy = bufArg(a, 1, dt, N * C, "gy");
  void* gx = bufArg(a, 2, dt, N * C, "gx");
  if (!a.ok() || C == 0) return undefinedValue(env);
  const OpsKernels& k = kernels();
  parallelFor(N, rowGrain(C), [&](int64_t r0, int64_t r1, int) { k.softmaxBackwardRows(y, gy, gx, dt, r0, r1, C, log); });
  return undefinedValue(env);
}

bool checkTargets(Args& a, const int32_t* t, int64_t N, int64_t V, int64_t ignore) {
  for (int64_t i = 0; i < N && a.ok(); i++) {
    if (t[i] != ignore && (t[i] < 0 || t[i] >= V)) {
      a.fail("target " + std::to_string(t[i]) + " at row " + std::to_string(i) + " is out of range [0, " +
             std::to_string(V) + ")");
    }
  }
  return a.ok();
}

// crossEntropy(logits, dtype, targets, N, V, ignoreIndex, labelSmoothing, loss, lse)
napi_value CrossEntropy(napi_env env, napi_callback_info info) {
  Args a(env, info, "crossEntropy", 9);
  DT dt = dtArg(a, 1);
  int64_t N = a.integer(3), V = a.integer(4), ignore = a.integer(5);
  float eps = static_cast<float>(a.number(6));
  if (!nonNegative(a, {{"N", N}, {"V", V}})) return undefinedValue(env);
  if (a.ok() && V == 0) a.fail("V must be > 0");
  const void* logits = bufArg(a, 0, dt, N * V, "logits");
  const int32_t* targets = static_cast<const int32_t*>(bufArg(a, 2, DT::I32, N, "targets"));
  float* loss = static_cast<float*>(bufArg(a, 7, DT::F32, N, "loss"));
  float* lse = static_cast<float*>(bufArg(a, 8, DT::F32, N, "lse"));
  if (!a.ok() || !checkTargets(a, targets, N, V, ignore)) return undefinedValue(env);
  const OpsKernels& k = kernels();
  parallelFor(N, rowGrain(V), [&](int64_t r0, int64_t r1, int) {
    k.crossEntropyRows(logits, dt, targets, r0, r1, V, ignore, eps, loss, lse);
  });
  return undefinedValue(env);
}

// crossEntropyBackward(logits, dtype, targets, lse, gLoss, N, V, ignoreIndex, labelSmoothing, gLogits)
napi_value CrossEntropyBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, "crossEntropyBackward", 10);
  DT dt = dtArg(a, 1);
  int64_t N = a.integer(5), V = a.integer(6), ignore = a.integer(7);
  float eps = static_cast<float>(a.number(8));
  if (!nonNegative(a, {{"N", N}, {"V", V}})) return undefinedValue(env);
  if (a.ok() && V == 0) a.fail("V must be > 0");
  const void* logits = bufArg(a, 0, dt, N * V, "logits");
  const int32_t* targets = static_cast<const int32_t*>(bufArg(a, 2, DT::I32, N, "targets"));
  const float* lse = static_cast<const float*>(bufArg(a, 3, DT::F32, N, "lse"));
  const float* gLoss = static_cast<const float*>(bufArg(a, 4, DT::F32, N, "gLoss"));
  void* g = bufArg(a, 9, dt, N * V, "gLogits");
  if (!a.ok() || !checkTargets(a, targets, N, V, ignore)) return undefinedValue(env);
  const OpsKernels& k = kernels();
  parallelFor(N, rowGrain(V), [&](int64_t r0, int64_t r1, int) {
    k.crossEntropyBackwardRows(logits, dt, targets, lse, gLoss, r0, r1, V, ignore, eps, g);
  });
  return undefinedValue(env);
}

// Adds the per-thread partial sums parts[t * C + j] into acc (dtype dt), acc[j] += sum_t parts.
void addPartials(void* acc, DT dt, const std::vector<float>& parts, int nt, int64_t C) {
  for (int64_t j = 0; j < C; j++) {
    float s = 0;
    for (int t = 0; t < nt; t++) s += parts[t * C + j];
    if (dt == DT::F32) static_cast<float*>(acc)[j] += s;
    else {
      uint16_t* p = static_cast<uint16_t*>(acc) + j;
      *p = f32ToBf16(bf16ToF32(*p) + s);
    }
  }
}

// swiglu(gate, up, out, dtype, n): out = silu(gate) * up, dense.
napi_value Swiglu(napi_env env, napi_callback_info info) {
  Args a(env, info, "swiglu", 5);
  DT dt = dtArg(a, 3);
  int64_t n = a.integer(4);
  if (!nonNegative(a, {{"n", n}})) return undefinedValue(env);
  const void* g = bufArg(a, 0, dt, n, "gate");
  const void* u = bufArg(a, 1, dt, n, "up");
  void* o = bufArg(a, 2, dt, n, "out");
  if (!a.ok()) return undefinedValue(env);
  const OpsKernels& k = kernels();
  parallelFor(n, 16384, [&](int64_t i0, int64_t i1, int) { k.swigluRange(g, u, o, dt, i0, i1); });
  return undefinedValue(env);
}

// swigluBackward(gate, up, gOut, gGate, gUp, dtype, n): gGate, gUp overwritten.
napi_value SwigluBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, "swigluBackward", 7);
  DT dt = dtArg(a, 5);
  int64_t n = a.integer(6);
  if (!nonNegative(a, {{"n", n}})) return undefinedValue(env);
  const void* g = bufArg(a, 0, dt, n, "gate");
  const void* u = bufArg(a, 1, dt, n, "up");
  const void* go = bufArg(a, 2, dt, n, "gOut");
  void* gg = bufArg(a, 3, dt, n, "gGate");
  void* gu = bufArg(a, 4, dt, n, "gUp");
  if (!a.ok()) return undefinedValue(env);
  const OpsKernels& k = kernels();
  parallelFor(n, 16384, [&](int64_t i0, int64_t i1, int) { k.swigluBackwardRange(g, u, go, gg, gu, dt, i0, i1); });
  return undefinedValue(env);
}

// rmsnorm(x, w|null, y, rstd, dtype, N, C, eps)
napi_value RmsNorm(napi_env env, napi_callback_info info) {
  Args a(env, info, "rmsnorm", 8);
  DT dt = dtArg(a, 4);
  int64_t N = a.integer(5), C = a.integer(6);
  float eps = static_cast<float>(a.number(7));
  if (!nonNegative(a, {{"N", N}, {"C", C}})) return undefinedValue(env);
  const void* x = bufArg(a, 0, dt, N * C, "x");
  const void* w = optBufArg(a, 1, dt, C, "w");
  void* y = bufArg(a, 2, dt, N * C, "y");
  float* rstd = static_cast<float*>(bufArg(a, 3, DT::F32, N, "rstd"));
  if (!a.ok()) return undefinedValue(env);
  const OpsKernels& k = kernels();
  parallelFor(N, rowGrain(C), [&](int64_t r0, int64_t r1, int) { k.rmsnormRows(x, w, y, rstd, dt, r0, r1, C, eps); });
  return undefinedValue(env);
}

// rmsnormBackward(x, w|null, rstd, gy, gx, gw|null, dtype, N, C)
napi_value RmsNormBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, "rmsnormBackward", 9);
  DT dt = dtArg(a, 6);
  int64_t N = a.integer(7), C = a.integer(8);
  if (!nonNegative(a, {{"N", N}, {"C", C}})) return undefinedValue(env);
  const void* x = bufArg(a, 0, dt, N * C, "x");
  const void* w = optBufArg(a, 1, dt, C, "w");
  const float* rstd = static_cast<const float*>(bufArg(a, 2, DT::F32, N, "rstd"));
  const void* gy = bufArg(a, 3, dt, N * C, "gy");
  void* gx = bufArg(a, 4, dt, N * C, "gx");
  void* gw = optBufArg(a, 5, dt, C, "gw");
  if (!a.ok()) return undefinedValue(env);
  const OpsKernels& k = kernels();
  const int nt = numThreads();
  std::vector<float> parts(gw ? static_cast<size_t>(nt * C) : 0, 0.0f);
  parallelFor(N, rowGrain(C), [&](int64_t r0, int64_t r1, int t) {
    k.rmsnormBackwardRows(x, w, rstd, gy, gx, gw ? parts.data() + t * C : nullptr, dt, r0, r1, C);
  });
  if (gw) addPartials(gw, dt, parts, nt, C);
  return undefinedValue(env);
}

// layernorm(x, w|null, b|null, y, mean, rstd, dtype, N, C, eps)
napi_value LayerNorm(napi_env env, napi_callback_info info) {
  Args a(env, info, "layernorm", 10);
  DT dt = dtArg(a, 6);
  int64_t N = a.integer(7), C = a.integer(8);
  float eps = static_cast<float>(a.number(9));
  if (!nonNegative(a, {{"N", N}, {"C", C}})) return undefinedValue(env);
  const void* x = bufArg(a, 0, dt, N * C, "x");
  const void* w = optBufArg(a, 1, dt, C, "w");
  const void* b = optBufArg(a, 2, dt, C, "b");
  void* y = bufArg(a, 3, dt, N * C, "y");
  float* mean = static_cast<float*>(bufArg(a, 4, DT::F32, N, "mean"));
  float* rstd = static_cast<float*>(bufArg(a, 5, DT::F32, N, "rstd"));
  if (!a.ok()) return undefinedValue(env);
  const OpsKernels& k = kernels();
  parallelFor(N, rowGrain(C),
              [&](int64_t r0, int64_t r1, int) { k.layernormRows(x, w, b, y, mean, rstd, dt, r0, r1, C, eps); });
  return undefinedValue(env);
}

// layernormBackward(x, w|null, mean, rstd, gy, gx, gw|null, gb|null, dtype, N, C)
napi_value LayerNormBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, "layernormBackward", 11);
  DT dt = dtArg(a, 8);
  int64_t N = a.integer(9), C = a.integer(10);
  if (!nonNegative(a, {{"N", N}, {"C", C}})) return undefinedValue(env);
  const void* x = bufArg(a, 0, dt, N * C, "x");
  const void* w = optBufArg(a, 1, dt, C, "w");
  const float* mean = static_cast<const float*>(bufArg(a, 2, DT::F32, N, "mean"));
  const float* rstd = static_cast<const float*>(bufArg(a, 3, DT::F32, N, "rstd"));
  const void* gy = bufArg(a, 4, dt, N * C, "gy");
  void* gx = bufArg(a, 5, dt, N * C, "gx");
  void* gw = optBufArg(a, 6, dt, C, "gw");
  void* gb = optBufArg(a, 7, dt, C, "gb");
  if (!a.ok()) return undefinedValue(env);
  const OpsKernels& k = kernels();
  const int nt = numThreads();
  std::vector<float> pw(gw ? static_cast<size_t>(nt * C) : 0, 0.0f), pb(gb ? static_cast<size_t>(nt * C) : 0, 0.0f);
  parallelFor(N, rowGrain(C), [&](int64_t r0, int64_t r1, int t) {
    k.layernormBackwardRows(x, w, mean, rstd, gy, gx, gw ? pw.data() + t * C : nullptr,
                            gb ? pb.data() + t * C : nullptr, dt, r0, r1, C);
  });
  if (gw) addPartials(gw, dt, pw, nt, C);
  if (gb) addPartials(gb, dt, pb, nt, C);
  return undefinedValue(env);
}

// rope(x, out, dtype, positions, B, T, H, D, rotaryDim, theta, interleaved, inverse)
napi_value Rope(napi_env env, napi_callback_info info) {
  Args a(env, info, "rope", 12);
  DT dt = dtArg(a, 2);
  int64_t B = a.integer(4), T = a.integer(5), H = a.integer(6), D = a.integer(7), rd = a.integer(8);
  double theta = a.number(9);
  bool interleaved = a.boolean(10), inverse = a.boolean(11);
  if (!nonNegative(a, {{"B", B}, {"T", T}, {"H", H}, {"D", D}, {"rotaryDim", rd}})) return undefinedValue(env);
  if (a.ok() && (rd % 2 != 0 || rd > D)) {
    a.fail("rotaryDim " + std::to_string(rd) + " must be even and <= D " + std::to_string(D));
  }
  const int64_t n = B * T * H * D;
  const void* x = bufArg(a, 0, dt, n, "x");
  void* out = bufArg(a, 1, dt, n, "out");
  const int32_t* pos = static_cast<const int32_t*>(bufArg(a, 3, DT::I32, B * T, "positions"));
  if (!a.ok() || n == 0) return undefinedValue(env);
  const int64_t half = rd / 2, rows = B * T;
  std::vector<double> invFreq(half);
  for (int64_t i = 0; i < half; i++) invFreq[i] = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(rd));
  std::vector<float> table(rows * rd);
  const OpsKernels& k = kernels();
  parallelFor(rows, rowGrain(H * D), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; r++) {
      float* cs = table.data() + r * rd;
      for (int64_t i = 0; i < half; i++) {
        double ang = static_cast<double>(pos[r]) * invFreq[i];
        cs[i] = static_cast<float>(std::cos(ang));
        cs[half + i] = static_cast<float>(inverse ? -std::sin(ang) : std::sin(ang));
      }
    }
    k.ropeRows(x, out, dt, table.data(), r0, r1, H, D, rd, interleaved);
  });
  return undefinedValue(env);
}

bool checkIds(Args& a, const int32_t* ids, int64_t N, int64_t V) {
  for (int64_t i = 0; i < N && a.ok(); i++) {
    if (ids[i] < 0 || ids[i] >= V) {
      a.fail("id " + std::to_string(ids[i]) + " at position " + std::to_string(i) + " is out of range [0, " +
             std::to_string(V) + ")");
    }
  }
  return a.ok();
}

// embedding(weight, ids, out, dtype, N, V, C)
napi_value Embedding(napi_env env, napi_callback_info info) {
  Args a(env, info, "embedding", 7);
  DT dt = dtArg(a, 3);
  int64_t N = a.integer(4), V = a.integer(5), C = a.integer(6);
  if (!nonNegative(a, {{"N", N}, {"V", V}, {"C", C}})) return undefinedValue(env);
  const char* w = static_cast<const char*>(bufArg(a, 0, dt, V * C, "weight"));
  const int32_t* ids = static_cast<const int32_t*>(bufArg(a, 1, DT::I32, N, "ids"));
  char* out = static_cast<char*>(bufArg(a, 2, dt, N * C, "out"));
  if (!a.ok() || !checkIds(a, ids, N, V)) return undefinedValue(env);
  const size_t row = static_cast<size_t>(C) * dtSize(dt);
  parallelFor(N, rowGrain(C), [&](int64_t r0, int64_t r1, int) {
    for (int64_t i = r0; i < r1; i++) std::memcpy(out + i * row, w + ids[i] * row, row);
  });
  return undefinedValue(env);
}

// embeddingBackward(gOut, ids, gWeight, dtype, N, V, C): gWeight[ids[i]] += gOut[i]. Positions are
// grouped by id (stable, so each row sums in position order), each distinct row is summed in float and
// rounded once, and distinct rows run in parallel without races.
napi_value EmbeddingBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, "embeddingBackward", 7);
  DT dt = dtArg(a, 3);
  int64_t N = a.integer(4), V = a.integer(5), C = a.integer(6);
  if (!nonNegative(a, {{"N", N}, {"V", V}, {"C", C}})) return undefinedValue(env);
  const void* g = bufArg(a, 0, dt, N * C, "gOut");
  const int32_t* ids = static_cast<const int32_t*>(bufArg(a, 1, DT::I32, N, "ids"));
  void* gw = bufArg(a, 2, dt, V * C, "gWeight");
  if (!a.ok() || !checkIds(a, ids, N, V) || N == 0 || C == 0) return undefinedValue(env);
  std::vector<int32_t> order(N);
  for (int64_t i = 0; i < N; i++) order[i] = static_cast<int32_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](int32_t x, int32_t y) { return ids[x] < ids[y]; });
  std::vector<int64_t> starts;  // first index in `order` of each distinct id
  for (int64_t i = 0; i < N; i++) {
    if (i == 0 || ids[order[i]] != ids[order[i - 1]]) starts.push_back(i);
  }
  const int64_t groups = static_cast<int64_t>(starts.size());
  starts.push_back(N);
  auto get = [&](const void* base, int64_t at) { return elementF32(base, dt, at); };
  parallelFor(groups, std::max<int64_t>(1, 32768 / std::max<int64_t>(C * N / groups, 1)), [&](int64_t g0, int64_t g1, int) {
    std::vector<float> acc(C);
    for (int64_t grp = g0; grp < g1; grp++) {
      const int64_t row = ids[order[starts[grp]]];
      for (int64_t c = 0; c < C; c++) acc[c] = get(gw, row * C + c);
      for (int64_t i = starts[grp]; i < starts[grp + 1]; i++) {
        const int64_t src = static_cast<int64_t>(order[i]) * C;
        if (dt == DT::F32) {
          const float* s = static_cast<const float*>(g) + src;
          for (int64_t c = 0; c < C; c++) acc[c] += s[c];
        } else {
          for (int64_t c = 0; c < C; c++) acc[c] += get(g, src + c);
        }
      }
      for (int64_t c = 0; c < C; c++) {
        if (dt == DT::F32) static_cast<float*>(gw)[row * C + c] = acc[c];
        else static_cast<uint16_t*>(gw)[row * C + c] = f32ToBf16(acc[c]);
      }
    }
  });
  return undefinedValue(env);
}

// attention(q, k, v, out, lse, dtype, B, Hq, Hkv, T, S, D, scale, causal, keyMask|null)
napi_value Attention(napi_env env, napi_callback_info info) {
  Args a(env, info, "attention", 15);
  DT dt = dtArg(a, 5);
  AttnShape s = attnShapeArg(a, 6);
  if (!a.ok()) return undefinedValue(env);
  const AttnBuffers buf = attnBuffersArg(a, dt, s);
  const void *q = buf.q, *k = buf.k, *v = buf.v;
  void* out = buf.out;
  float* lse = buf.lse;
  if (!a.ok()) return undefinedValue(env);
  const OpsKernels& kern = kernels();
  const int64_t scratchN = attnScratchFloats(s.S, s.D);
  // One task per kv group (its query heads share the laid-out K^T / V) when there are enough groups to
  // keep every thread busy, else one task per query head.
  const int64_t G = s.Hq / s.Hkv, groups = s.B * s.Hkv;
  const int64_t headsPerTask = groups >= numThreads() ? G : 1;
  parallelFor(s.B * s.Hq / headsPerTask, 1, [&](int64_t i0, int64_t i1, int) {
    std::vector<float> scratch(scratchN);
    for (int64_t i = i0; i < i1; i++) {
      const int64_t first = i * headsPerTask;  // flat (b, h) index of the task's first head
      const int64_t b = first / s.Hq, h = first % s.Hq;
      kern.attentionHeads(q, k, v, out, lse, dt, s, b, h, h + headsPerTask, scratch.data());
    }
  });
  return undefinedValue(env);
}

// attentionBackward(q, k, v, out, lse, gOut, gq, gk, gv, dtype, B, Hq, Hkv, T, S, D, scale, causal, keyMask|null)
napi_value AttentionBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, "attentionBackward", 19);
  DT dt = dtArg(a, 9);
  AttnShape s = attnShapeArg(a, 10);
  if (!a.ok()) return undefinedValue(env);
  const int64_t nq = s.B * s.Hq * s.T * s.D, nk = s.B * s.Hkv * s.S * s.D;
  const AttnBuffers buf = attnBuffersArg(a, dt, s);
  const void *q = buf.q, *k = buf.k, *v = buf.v, *out = buf.out;
  const float* lse = buf.lse;
  const void* gOut = bufArg(a, 5, dt, nq, "gOut");
  void* gq = bufArg(a, 6, dt, nq, "gq");
  void* gk = bufArg(a, 7, dt, nk, "gk");
  void* gv = bufArg(a, 8, dt, nk, "gv");
  if (!a.ok()) return undefinedValue(env);
  const OpsKernels& kern = kernels();
  const int64_t groups = s.B * s.Hkv, G = s.Hq / s.Hkv, Dp = (s.D + 15) / 16 * 16, kvN = s.S * Dp;
  const int nt = numThreads();
  // Split a group's query heads over threads only when there are fewer groups than threads; each
  // (group, part) task accumulates gk/gv in its own float buffer, summed per group afterwards.
  const int64_t parts = groups >= nt ? 1 : std::min<int64_t>(G, (nt + groups - 1) / groups);
  const int64_t tasks = groups * parts;
  std::vector<float> acc(static_cast<size_t>(tasks * 2 * kvN), 0.0f);
  const int64_t scratchN = attnScratchFloats(s.S, s.D);
  parallelFor(tasks, 1, [&](int64_t i0, int64_t i1, int) {
    std::vector<float> scratch(scratchN);
    for (int64_t i = i0; i < i1; i++) {
      const int64_t g = i / parts, p = i % parts, b = g / s.Hkv, kvh = g % s.Hkv;
      const int64_t h0 = kvh * G + p * G / parts, h1 = kvh * G + (p + 1) * G / parts;
      float* gkA = acc.data() + i * 2 * kvN;
      kern.attentionBackwardGroup(q, k, v, out, lse, gOut, gq, gkA, gkA + kvN, dt, s, b, kvh, h0, h1, scratch.data());
    }
  });
  parallelFor(groups * s.S, rowGrain(s.D), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; r++) {
      const int64_t g = r / s.S, srow = r % s.S;
      for (int which = 0; which < 2; which++) {
        void* dst = which == 0 ? gk : gv;
        for (int64_t d = 0; d < s.D; d++) {
          float sum = 0;
          for (int64_t p = 0; p < parts; p++) sum += acc[(g * parts + p) * 2 * kvN + which * kvN + srow * Dp + d];
          const int64_t at = r * s.D + d;
          if (dt == DT::F32) static_cast<float*>(dst)[at] = sum;
          else static_cast<uint16_t*>(dst)[at] = f32ToBf16(sum);
        }
      }
    }
  });
  return undefinedValue(env);
}

// adamw(param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step)
napi_value AdamW(napi_env env, napi_callback_info info) {
  Args a(env, info, "adamw", 11);
  int64_t n = a.integer(4);
  double lr = a.number(5), b1 = a.number(6), b2 = a.number(7), eps = a.number(8), wd = a.number(9);
  double step = a.number(10);
  if (!nonNegative(a, {{"n", n}})) return undefinedValue(env);
  if (a.ok() && step < 1) a.fail("step must be >= 1, got " + std::to_string(step));
  float* p = static_cast<float*>(bufArg(a, 0, DT::F32, n, "param"));
  const float* g = static_cast<const float*>(bufArg(a, 1, DT::F32, n, "grad"));
  float* m = static_cast<float*>(bufArg(a, 2, DT::F32, n, "m"));
  float* v = static_cast<float*>(bufArg(a, 3, DT::F32, n, "v"));
  if (!a.ok()) return undefinedValue(env);
  const float bc1 = static_cast<float>(1.0 - std::pow(b1, step)), bc2 = static_cast<float>(1.0 - std::pow(b2, step));
  const float decay = static_cast<float>(1.0 - lr * wd);
  const OpsKernels& k = kernels();
  parallelFor(n, 32768, [&](int64_t i0, int64_t i1, int) {
    k.adamw(p, g, m, v, i0, i1, static_cast<float>(lr), static_cast<float>(b1), static_cast<float>(1.0 - b1),
            static_cast<float>(b2), static_cast<float>(1.0 - b2), static_cast<float>(eps), decay, bc1, bc2);
  });
  return undefinedValue(env);
}

}  // namespace

void registerNn(napi_env env, napi_value exports) {
  defineFunction(env, exports, "softmax", Softmax);
  defineFunction(env, exports, "softmaxBackward", SoftmaxBackward);
  defineFunction(env, exports, "crossEntropy", CrossEntropy);
  defineFunction(env, exports, "crossEntropyBackward", CrossEntropyBackward);
  defineFunction(env, exports, "rmsnorm", RmsNorm);
  defineFunction(env, exports, "swiglu", Swiglu);
  defineFunction(env, exports, "swigluBackward", SwigluBackward);
  defineFunction(env, exports, "rmsnormBackward", RmsNormBackward);
  defineFunction(env, exports, "layernorm", LayerNorm);
  defineFunction(env, exports, "layernormBackward", LayerNormBackward);
  defineFunction(env, exports, "rope", Rope);
  defineFunction(env, exports, "embedding", Embedding);
  defineFunction(env, exports, "embeddingBackward", EmbeddingBackward);
  defineFunction(env, exports, "attention", Attention);
  defineFunction(env, exports, "attentionBackward", AttentionBackward);
  defineFunction(env, exports, "adamw", AdamW);
}

}  // namespace graft
