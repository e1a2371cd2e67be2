// N-API bindings of the decode path: decodeAttention (Backend.attention for the few query rows of a
// decode step: ops_k_decode.h's kernel, the query heads of a kv head together, threads over kv heads) and
// decoderLayer (a whole pre-norm Llama / Qwen2 decoder layer for a decode step in one call: RMSNorm,
// q/k/v projections + biases, RoPE, KV-cache write, causal GQA attention over the cache, o projection,
// residual, RMSNorm, gate/up projections, SwiGLU, down projection, residual). decoderLayer runs the
// same kernels, in the same order and with the same roundings, as those ops one by one (ops kernels,
// quant.h's gemv / qmatmul kernels and decodeAttention), so its result equals the unfused layer's; what
// it saves is the ~25 calls from JS per layer, their allocations and thread-pool wake-ups.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "napi_util.h"
#include "ops_binding.h"
#include "ops_kernels.h"
#include "quant.h"
#include "threadpool.h"

namespace graft {
namespace decode {
namespace {

// Where the elements live: q / out element (b, h, t, d) at b * qB + h * qH + t * qT + d (out: oB, oH,
// oT); key / value element (b, kvh, s, d) at b * kB + kvh * kH + s * kRow + d.
struct Layout {
  int64_t qB, qH, qT, oB, oH, oT, kB, kH, kRow;
};

void attend(const void* q, const void* k, const void* v, void* out, float* lse, DT dt, const AttnShape& s, const Layout& L) {
  const OpsKernels& kern = kernels();
  const size_t es = dtSize(dt);
  const int64_t G = s.Hq / s.Hkv, groups = s.B * s.Hkv;
  const int64_t scratchN = decodeAttnScratchFloats(G * s.T, s.S, s.D);
  // One task per kv head (its G query heads share each converted key block); a problem under ~64k
  // multiply-adds runs on the calling thread.
  const int64_t perGroup = G * s.T * s.S * s.D;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, perGroup));
  parallelFor(groups, grain, [&](int64_t g0, int64_t g1, int) {
    std::vector<float> scratch(static_cast<size_t>(scratchN));
    for (int64_t i = g0; i < g1; i++) {
      const int64_t b = i / s.Hkv, kvh = i % s.Hkv, h0 = kvh * G;
      const char* qp = static_cast<const char*>(q) + (b * L.qB + h0 * L.qH) * es;
      const char* kp = static_cast<const char*>(k) + (b * L.kB + kvh * L.kH) * es;
      const char* vp = static_cast<const char*>(v) + (b * L.kB + kvh * L.kH) * es;
      char* op = static_cast<char*>(out) + (b * L.oB + h0 * L.oH) * es;
      const uint8_t* mask = s.keyMask ? s.keyMask + b * s.S : nullptr;
      kern.decodeAttentionGroup(qp, L.qH, L.qT, kp, vp, L.kRow, op, L.oH, L.oT, lse ? lse + (b * s.Hq + h0) * s.T : nullptr, dt,
                                G, s.T, s.S, s.D, s.causal, mask, s.scale, scratch.data());
    }
  });
}

// decodeAttention(q, k, v, out, lse, dtype, B, Hq, Hkv, T, S, D, scale, causal, keyMask): the
// arguments and dense layouts of attention (q, out [B, Hq, T, D], k, v [B, Hkv, S, D], lse [B, Hq, T]).
napi_value DecodeAttention(napi_env env, napi_callback_info info) {
  Args a(env, info, "attention", 15);  // errors name the Backend op the caller ran
  const DT dt = dtArg(a, 5);
  const AttnShape s = attnShapeArg(a, 6);
  if (!a.ok()) return undefinedValue(env);
  const AttnBuffers buf = attnBuffersArg(a, dt, s);
  if (!a.ok() || s.B * s.Hq * s.T * s.D == 0) return undefinedValue(env);
  const Layout L{s.Hq * s.T * s.D, s.T * s.D, s.D, s.Hq * s.T * s.D, s.T * s.D, s.D, s.Hkv * s.S * s.D, s.S * s.D, s.D};
  attend(buf.q, buf.k, buf.v, buf.out, buf.lse, dt, s, L);
  return undefinedValue(env);
}

// ---- decoderLayer ------------------------------------------------------------------------------

enum WeightKind : int { kF32 = 0, kBf16 = 1, kQ8 = 2, kQ4 = 3 };

// y [M, N] = x [M, K] @ W^T (+ bias), W [N, K] float (of the activations' dtype) or Q8_0 / Q4_0.
struct Proj {
  const char* name;
  int kind;
  const void* w;
  const uint16_t* scales;
  const void* bias;
  int64_t N, K;
  void* y;
};

// The projections of one input x in one pass over the pool (rows of all of them split in units of 16,
// claimed guided, as the gemv / qmatmul bindings split one); the activations are quantized once for
// quantized weights.
void project(const void* x, DT dt, int64_t M, Proj* ps, int np) {
  const quant::Kernels& qk = quant::activeKernels();
  const int64_t K = ps[0].K;
  bool anyQ = false, anyQ4 = false;
  for (int i = 0; i < np; i++) {
    anyQ = anyQ || ps[i].kind >= kQ8;
    anyQ4 = anyQ4 || ps[i].kind == kQ4;
  }
  std::vector<int8_t> q, q4;
  std::vector<float> d;
  std::vector<int32_t> s;
  quant::QActs acts{nullptr, nullptr, nullptr, M, K, nullptr};
  if (anyQ) {
    q.resize(static_cast<size_t>(M * K));
    d.resize(static_cast<size_t>(M * K / quant::kBlock));
    s.resize(d.size());
    if (anyQ4) q4.resize(q.size());
    quant::quantizeActivations(x, dt == DT::BF16, M, K, q.data(), d.data(), s.data(), anyQ4 ? q4.data() : nullptr);
    acts = {q.data(), d.data(), s.data(), M, K, anyQ4 ? q4.data() : nullptr};
  }
  constexpr int64_t kUnit = 16;
  int64_t start[8] = {0};
  int64_t rowsTotal = 0;
  for (int i = 0; i < np; i++) {
    start[i + 1] = start[i] + (ps[i].N + kUnit - 1) / kUnit;
    rowsTotal += ps[i].N;
  }
  const int64_t units = start[np];
  const bool bf = dt == DT::BF16;
  auto run = [&](int64_t u0, int64_t u1) {
    for (int i = 0; i < np; i++) {
      const int64_t lo = std::max(u0, start[i]), hi = std::min(u1, start[i + 1]);
      if (lo >= hi) continue;
      const Proj& p = ps[i];
      const int64_t n0 = (lo - start[i]) * kUnit, n1 = std::min(p.N, (hi - start[i]) * kUnit);
      if (p.kind == kQ8 || p.kind == kQ4) {
        (p.kind == kQ8 ? qk.q8 : qk.q4)(acts, static_cast<const uint8_t*>(p.w), p.scales, n0, n1, p.y, p.N, bf);
      } else {
        (bf ? qk.gemvBf16 : qk.gemvF32)(x, K, p.w, K, M, K, n0, n1, p.y, p.N, bf, 1.0f);
      }
    }
  };
  const int nt = numThreads();
  if (nt == 1 || rowsTotal * M * K < (1 << 16)) {
    run(0, units);
  } else {
    parallelGuided(units, run);
  }
  const OpsKernels& ok = kernels();
  const size_t es = dtSize(dt);
  for (int i = 0; i < np; i++) {
    if (!ps[i].bias) continue;
    for (int64_t m = 0; m < M; m++) {
      char* row = static_cast<char*>(ps[i].y) + m * ps[i].N * es;
      ok.binaryRow(kAdd, row, 1, ps[i].bias, 1, row, 1, dt, ps[i].N);
    }
  }
}

// Reads projection i's 4 arguments (kind, weight, scales | null, bias | null) at `base`.
Proj projArg(Args& a, size_t base, const char* name, DT dt, int64_t N, int64_t K) {
  Proj p{name, static_cast<int>(a.integer(base)), nullptr, nullptr, nullptr, N, K, nullptr};
  if (!a.ok()) return p;
  const std::string n(name);
  if (p.kind == kF32 || p.kind == kBf16) {
    const DT wdt = p.kind == kF32 ? DT::F32 : DT::BF16;
    if (wdt != dt) {
      a.fail(n + ": a " + dtName(wdt) + " weight needs " + dtName(wdt) + " activations, got " + dtName(dt));
      return p;
    }
    p.w = bufArg(a, base + 1, dt, N * K, (n + ".weight").c_str());
  } else if (p.kind == kQ8 || p.kind == kQ4) {
    if (K % quant::kBlock != 0) {
      a.fail(n + ": in_features " + std::to_string(K) + " is not a multiple of 32");
      return p;
    }
    ArrayArg qs = a.array(base + 1);
    ArrayArg sc = a.array(base + 2);
    const int64_t needQ = p.kind == kQ8 ? N * K : N * K / 2;
    if (a.ok() && (qs.type != napi_uint8_array || static_cast<int64_t>(qs.length) < needQ))
      a.fail(n + ".qs must be a Uint8Array of " + std::to_string(needQ) + " bytes");
    if (a.ok() && (sc.type != napi_uint16_array || static_cast<int64_t>(sc.length) < N * K / quant::kBlock))
      a.fail(n + ".scales must be a Uint16Array of " + std::to_string(N * K / quant::kBlock) + " float16 values");
    p.w = qs.data;
    p.scales = static_cast<const uint16_t*>(sc.data);
  } else {
    a.fail(n + ": unknown weight kind " + std::to_string(p.kind));
  }
  p.bias = optBufArg(a, base + 3, dt, N, (n + ".bias").c_str());
  return p;
}

// decoderLayer(h, dtype, dims [B, T, C, F, Hq, Hkv, D, past, capacity], eps, theta, positions, keyMask,
//              kCache, vCache, inputNorm, postNorm, then for q, k, v, o, gate, up, down each: kind
//              (0 float32, 1 bfloat16, 2 q8_0, 3 q4_0), weight (or qs), scales | null, bias | null).
// h [B * T, C] is updated in place; the new keys / values go to positions past .. past + T - 1 of the
// caches [B, Hkv, capacity, D]; keyMask [B, past + T] (1 = attend) or null; RoPE "half" style with
// frequencies theta^(-2i / D), at positions [B * T].
napi_value DecoderLayer(napi_env env, napi_callback_info info) {
  Args a(env, info, "decoderLayer", 39);
  const DT dt = dtArg(a, 1);
  const std::vector<int64_t> dims = a.intList(2);
  if (a.ok() && dims.size() != 9) a.fail("dims must be [B, T, C, F, Hq, Hkv, D, past, capacity]");
  if (!a.ok()) return undefinedValue(env);
  const int64_t B = dims[0], T = dims[1], C = dims[2], F = dims[3], Hq = dims[4], Hkv = dims[5], D = dims[6];
  const int64_t past = dims[7], cap = dims[8];
  if (!nonNegative(a, {{"B", B}, {"T", T}, {"C", C}, {"F", F}, {"Hq", Hq}, {"Hkv", Hkv}, {"D", D}, {"past", past}}))
    return undefinedValue(env);
  if (a.ok() && (Hkv == 0 || Hq % Hkv != 0)) a.fail("Hq " + std::to_string(Hq) + " is not a multiple of Hkv " + std::to_string(Hkv));
  if (a.ok() && D % 2 != 0) a.fail("head dim " + std::to_string(D) + " must be even");
  if (a.ok() && past + T > cap)
    a.fail(std::to_string(past) + " cached + " + std::to_string(T) + " new positions exceed the capacity " + std::to_string(cap));
  const float eps = static_cast<float>(a.number(3));
  const double theta = a.number(4);
  const int64_t M = B * T, S = past + T, Nq = Hq * D, Nk = Hkv * D;
  void* h = bufArg(a, 0, dt, M * C, "h");
  const int32_t* pos = static_cast<const int32_t*>(bufArg(a, 5, DT::I32, M, "positions"));
  const uint8_t* keyMask = nullptr;
  if (a.ok() && !a.isNull(6)) {
    ArrayArg m = a.array(6);
    if (a.ok() && (m.type != napi_uint8_array || static_cast<int64_t>(m.length) != B * S))
      a.fail("keyMask must be a Uint8Array of B * (past + T) = " + std::to_string(B * S) + " elements");
    keyMask = static_cast<const uint8_t*>(m.data);
  }
  void* kc = bufArg(a, 7, dt, B * Hkv * cap * D, "kCache");
  void* vc = bufArg(a, 8, dt, B * Hkv * cap * D, "vCache");
  const void* w1 = bufArg(a, 9, dt, C, "input_layernorm.weight");
  const void* w2 = bufArg(a, 10, dt, C, "post_attention_layernorm.weight");
  Proj pq = projArg(a, 11, "q_proj", dt, Nq, C);
  Proj pk = projArg(a, 15, "k_proj", dt, Nk, C);
  Proj pv = projArg(a, 19, "v_proj", dt, Nk, C);
  Proj po = projArg(a, 23, "o_proj", dt, C, Nq);
  Proj pg = projArg(a, 27, "gate_proj", dt, F, C);
  Proj pu = projArg(a, 31, "up_proj", dt, F, C);
  Proj pd = projArg(a, 35, "down_proj", dt, C, F);
  if (!a.ok() || M == 0) return undefinedValue(env);

  const size_t es = dtSize(dt);
  std::vector<char> buf(static_cast<size_t>(M) * (C + Nq + 2 * Nk + Nq + 2 * F) * es);
  char* x = buf.data();
  char* qb = x + M * C * es;
  char* kb = qb + M * Nq * es;
  char* vb = kb + M * Nk * es;
  char* att = vb + M * Nk * es;
  char* g = att + M * Nq * es;
  char* u = g + M * F * es;
  std::vector<float> rstd(static_cast<size_t>(M));
  const OpsKernels& ok = kernels();

  // Attention block.
  ok.rmsnormRows(h, w1, x, rstd.data(), dt, 0, M, C, eps);
  pq.y = qb;
  pk.y = kb;
  pv.y = vb;
  Proj qkv[3] = {pq, pk, pv};
  project(x, dt, M, qkv, 3);
  const int64_t half = D / 2;
  std::vector<double> invFreq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; i++) invFreq[i] = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(D));
  std::vector<float> table(static_cast<size_t>(M * D));
  for (int64_t r = 0; r < M; r++) {
    float* cs = table.data() + r * D;
    for (int64_t i = 0; i < half; i++) {
      const double ang = static_cast<double>(pos[r]) * invFreq[i];
      cs[i] = static_cast<float>(std::cos(ang));
      cs[half + i] = static_cast<float>(std::sin(ang));
    }
  }
  ok.ropeRows(qb, qb, dt, table.data(), 0, M, Hq, D, D, false);
  ok.ropeRows(kb, kb, dt, table.data(), 0, M, Hkv, D, D, false);
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++)
      for (int64_t j = 0; j < Hkv; j++) {
        const int64_t src = ((b * T + t) * Nk + j * D) * es, dst = (((b * Hkv + j) * cap + past + t) * D) * es;
        std::memcpy(static_cast<char*>(kc) + dst, kb + src, D * es);
        std::memcpy(static_cast<char*>(vc) + dst, vb + src, D * es);
      }
  const AttnShape s{B, Hq, Hkv, T, S, D, static_cast<float>(1.0 / std::sqrt(static_cast<double>(D))), true, keyMask};
  const Layout L{T * Nq, D, Nq, T * Nq, D, Nq, Hkv * cap * D, cap * D, D};
  attend(qb, kc, vc, att, nullptr, dt, s, L);
  po.y = x;  // x is free again: o_proj's output
  project(att, dt, M, &po, 1);
  ok.binaryRow(kAdd, h, 1, x, 1, h, 1, dt, M * C);

  // MLP block.
  ok.rmsnormRows(h, w2, x, rstd.data(), dt, 0, M, C, eps);
  pg.y = g;
  pu.y = u;
  Proj gu[2] = {pg, pu};
  project(x, dt, M, gu, 2);
  ok.swigluRange(g, u, g, dt, 0, M * F);
  pd.y = x;
  project(g, dt, M, &pd, 1);
  ok.binaryRow(kAdd, h, 1, x, 1, h, 1, dt, M * C);
  return undefinedValue(env);
}

}  // namespace
}  // namespace decode

void registerDecode(napi_env env, napi_value exports) {
  defineFunction(env, exports, "decodeAttention", decode::DecodeAttention);
  defineFunction(env, exports, "decoderLayer", decode::DecoderLayer);
}

}  // namespace graft
