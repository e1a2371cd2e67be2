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
  // Tasks of kv heads (its G query heads share each converted key block), claimed guided; a problem
  // under ~64k multiply-adds runs on the calling thread.
  const int64_t perGroup = G * s.T * s.S * s.D;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, perGroup));
  auto run = [&](int64_t g0, int64_t g1) {
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
  };
  if (groups <= grain || numThreads() == 1) run(0, groups);
  else parallelGuided(groups, run);
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
  if (p.kind == kF32 || p.kind == kBf16) {
    const DT wdt = p.kind == kF32 ? DT::F32 : DT::BF16;
    if (wdt != dt) {
      a.fail(std::string(name) + ": a " + dtName(wdt) + " weight needs " + dtName(wdt) + " activations, got " + dtName(dt));
      return p;
    }
    p.w = bufArg(a, base + 1, dt, N * K, (std::string(name) + ".weight").c_str());
  } else if (p.kind == kQ8 || p.kind == kQ4) {
    const std::string n(name);
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
    a.fail(std::string(name) + ": unknown weight kind " + std::to_string(p.kind));
  }
  if (a.ok() && !a.isNull(base + 3)) p.bias = bufArg(a, base + 3, dt, N, (std::string(name) + ".bias").c_str());
  return p;
}

// What every layer of a step shares: dtype, sizes, RMSNorm eps, RoPE base, positions [B * T].
struct Step {
  DT dt;
  int64_t B, T, C, F, Hq, Hkv, D;
  float eps;
  double theta;
  const int32_t* pos;
};

// One layer's state and weights: caches [B, Hkv, capacity, D] with `past` positions filled, keyMask
// [B, past + T] or null, norm weights, and the q, k, v, o, gate, up, down projections.
struct Layer {
  int64_t past, cap;
  void *kc, *vc;
  const uint8_t* keyMask;
  const void *w1, *w2;
  Proj q, k, v, o, gate, up, down;
};

// Reads the step's arguments: h, dtype, dims [B, T, C, F, Hq, Hkv, D, ...], eps, theta, positions.
// nDims: 9 for decoderLayer (past and capacity follow), 7 for decoderStack.
bool stepArgs(Args& a, size_t nDims, Step& s, std::vector<int64_t>& dims) {
  s.dt = dtArg(a, 1);
  dims = a.intList(2);
  if (a.ok() && dims.size() != nDims)
    a.fail(nDims == 9 ? "dims must be [B, T, C, F, Hq, Hkv, D, past, capacity]" : "dims must be [B, T, C, F, Hq, Hkv, D]");
  if (!a.ok()) return false;
  s.B = dims[0], s.T = dims[1], s.C = dims[2], s.F = dims[3], s.Hq = dims[4], s.Hkv = dims[5], s.D = dims[6];
  if (!nonNegative(a, {{"B", s.B}, {"T", s.T}, {"C", s.C}, {"F", s.F}, {"Hq", s.Hq}, {"Hkv", s.Hkv}, {"D", s.D}})) return false;
  if (s.Hkv == 0 || s.Hq % s.Hkv != 0) a.fail("Hq " + std::to_string(s.Hq) + " is not a multiple of Hkv " + std::to_string(s.Hkv));
  if (a.ok() && s.D % 2 != 0) a.fail("head dim " + std::to_string(s.D) + " must be even");
  s.eps = static_cast<float>(a.number(3));
  s.theta = a.number(4);
  s.pos = static_cast<const int32_t*>(bufArg(a, 5, DT::I32, s.B * s.T, "positions"));
  return a.ok();
}

// Reads a layer's keyMask (at `mask`), caches and weights (at `base`: kCache, vCache, input and post
// norms, then kind, weight | qs, scales | null, bias | null per projection).
bool layerArgs(Args& a, size_t mask, size_t base, const Step& s, int64_t past, int64_t cap, Layer& L) {
  L.past = past;
  L.cap = cap;
  if (past < 0) a.fail("past must be >= 0, got " + std::to_string(past));
  if (a.ok() && past + s.T > cap)
    a.fail(std::to_string(past) + " cached + " + std::to_string(s.T) + " new positions exceed the capacity " + std::to_string(cap));
  if (!a.ok()) return false;
  const int64_t S = past + s.T, Nq = s.Hq * s.D, Nk = s.Hkv * s.D;
  L.keyMask = nullptr;
  if (!a.isNull(mask)) {
    ArrayArg m = a.array(mask);
    if (a.ok() && (m.type != napi_uint8_array || static_cast<int64_t>(m.length) != s.B * S))
      a.fail("keyMask must be a Uint8Array of B * (past + T) = " + std::to_string(s.B * S) + " elements");
    L.keyMask = static_cast<const uint8_t*>(m.data);
  }
  L.kc = bufArg(a, base, s.dt, s.B * s.Hkv * cap * s.D, "kCache");
  L.vc = bufArg(a, base + 1, s.dt, s.B * s.Hkv * cap * s.D, "vCache");
  L.w1 = bufArg(a, base + 2, s.dt, s.C, "input_layernorm.weight");
  L.w2 = bufArg(a, base + 3, s.dt, s.C, "post_attention_layernorm.weight");
  L.q = projArg(a, base + 4, "q_proj", s.dt, Nq, s.C);
  L.k = projArg(a, base + 8, "k_proj", s.dt, Nk, s.C);
  L.v = projArg(a, base + 12, "v_proj", s.dt, Nk, s.C);
  L.o = projArg(a, base + 16, "o_proj", s.dt, s.C, Nq);
  L.gate = projArg(a, base + 20, "gate_proj", s.dt, s.F, s.C);
  L.up = projArg(a, base + 24, "up_proj", s.dt, s.F, s.C);
  L.down = projArg(a, base + 28, "down_proj", s.dt, s.C, s.F);
  return a.ok();
}
constexpr size_t kLayerArgs = 32;  // kCache, vCache, 2 norms, 7 x 4 projection arguments

// The work buffers of a layer: x [M, C], q [M, Nq], k, v [M, Nk], attention out [M, Nq], gate, up
// [M, F] in the activations' dtype; RMSNorm's rstd; the RoPE table [M, D].
struct Scratch {
  std::vector<char> buf;
  std::vector<float> rstd, table;
  explicit Scratch(const Step& s) {
    const int64_t M = s.B * s.T;
    buf.resize(static_cast<size_t>(M) * (s.C + 2 * s.Hq * s.D + 2 * s.Hkv * s.D + 2 * s.F) * dtSize(s.dt));
    rstd.resize(static_cast<size_t>(M));
    table.resize(static_cast<size_t>(M * s.D));
    const int64_t half = s.D / 2;
    std::vector<double> invFreq(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; i++) invFreq[i] = std::pow(s.theta, -2.0 * static_cast<double>(i) / static_cast<double>(s.D));
    for (int64_t r = 0; r < M; r++) {
      float* cs = table.data() + r * s.D;
      for (int64_t i = 0; i < half; i++) {
        const double ang = static_cast<double>(s.pos[r]) * invFreq[i];
        cs[i] = static_cast<float>(std::cos(ang));
        cs[half + i] = static_cast<float>(std::sin(ang));
      }
    }
  }
};

// One pre-norm decoder layer on h [B * T, C], in place; the new keys / values go to positions
// past .. past + T - 1 of the caches.
void runLayer(void* h, const Step& st, Layer L, Scratch& sc) {
  const DT dt = st.dt;
  const int64_t B = st.B, T = st.T, C = st.C, F = st.F, Hq = st.Hq, Hkv = st.Hkv, D = st.D;
  const int64_t M = B * T, S = L.past + T, Nq = Hq * D, Nk = Hkv * D, past = L.past, cap = L.cap;
  const size_t es = dtSize(dt);
  char* x = sc.buf.data();
  char* qb = x + M * C * es;
  char* kb = qb + M * Nq * es;
  char* vb = kb + M * Nk * es;
  char* att = vb + M * Nk * es;
  char* g = att + M * Nq * es;
  char* u = g + M * F * es;
  const OpsKernels& ok = kernels();

  // Attention block.
  ok.rmsnormRows(h, L.w1, x, sc.rstd.data(), dt, 0, M, C, st.eps);
  L.q.y = qb;
  L.k.y = kb;
  L.v.y = vb;
  Proj qkv[3] = {L.q, L.k, L.v};
  project(x, dt, M, qkv, 3);
  ok.ropeRows(qb, qb, dt, sc.table.data(), 0, M, Hq, D, D, false);
  ok.ropeRows(kb, kb, dt, sc.table.data(), 0, M, Hkv, D, D, false);
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++)
      for (int64_t j = 0; j < Hkv; j++) {
        const int64_t src = ((b * T + t) * Nk + j * D) * es, dst = (((b * Hkv + j) * cap + past + t) * D) * es;
        std::memcpy(static_cast<char*>(L.kc) + dst, kb + src, D * es);
        std::memcpy(static_cast<char*>(L.vc) + dst, vb + src, D * es);
      }
  const AttnShape s{B, Hq, Hkv, T, S, D, static_cast<float>(1.0 / std::sqrt(static_cast<double>(D))), true, L.keyMask};
  const Layout lay{T * Nq, D, Nq, T * Nq, D, Nq, Hkv * cap * D, cap * D, D};
  attend(qb, L.kc, L.vc, att, nullptr, dt, s, lay);
  L.o.y = x;  // x is free again: o_proj's output
  project(att, dt, M, &L.o, 1);
  ok.binaryRow(kAdd, h, 1, x, 1, h, 1, dt, M * C);

  // MLP block.
  ok.rmsnormRows(h, L.w2, x, sc.rstd.data(), dt, 0, M, C, st.eps);
  L.gate.y = g;
  L.up.y = u;
  Proj gu[2] = {L.gate, L.up};
  project(x, dt, M, gu, 2);
  ok.swigluRange(g, u, g, dt, 0, M * F);
  L.down.y = x;
  project(g, dt, M, &L.down, 1);
  ok.binaryRow(kAdd, h, 1, x, 1, h, 1, dt, M * C);
}

// decoderLayer(h, dtype, dims [B, T, C, F, Hq, Hkv, D, past, capacity], eps, theta, positions, keyMask,
//              kCache, vCache, inputNorm, postNorm, then for q, k, v, o, gate, up, down each: kind
//              (0 float32, 1 bfloat16, 2 q8_0, 3 q4_0), weight (or qs), scales | null, bias | null).
// h [B * T, C] is updated in place; the new keys / values go to positions past .. past + T - 1 of the
// caches [B, Hkv, capacity, D]; keyMask [B, past + T] (1 = attend) or null; RoPE "half" style with
// frequencies theta^(-2i / D), at positions [B * T].
napi_value DecoderLayer(napi_env env, napi_callback_info info) {
  Args a(env, info, "decoderLayer", 7 + kLayerArgs);
  Step st;
  std::vector<int64_t> dims;
  if (!stepArgs(a, 9, st, dims)) return undefinedValue(env);
  void* h = bufArg(a, 0, st.dt, st.B * st.T * st.C, "h");
  Layer L;
  if (!a.ok() || !layerArgs(a, 6, 7, st, dims[7], dims[8], L) || st.B * st.T == 0) return undefinedValue(env);
  Scratch sc(st);
  runLayer(h, st, L, sc);
  return undefinedValue(env);
}

// decoderStack(h, dtype, dims [B, T, C, F, Hq, Hkv, D], eps, theta, positions, layers): decoderLayer
// for consecutive layers in one call, layers[i] = [past, capacity, keyMask | null, kCache, vCache,
// inputNorm, postNorm, then the 4 arguments of each projection as decoderLayer takes them]. Every
// layer's arguments are checked before any runs, so a bad one leaves h and the caches as they were.
napi_value DecoderStack(napi_env env, napi_callback_info info) {
  Args a(env, info, "decoderStack", 7);
  Step st;
  std::vector<int64_t> dims;
  if (!stepArgs(a, 7, st, dims)) return undefinedValue(env);
  void* h = bufArg(a, 0, st.dt, st.B * st.T * st.C, "h");
  if (!a.ok()) return undefinedValue(env);
  Args list(a, 6, "layers");
  std::vector<Layer> layers(list.count());
  for (size_t i = 0; i < layers.size() && list.ok(); i++) {
    Args la(list, i, "layer " + std::to_string(i), 3 + kLayerArgs);
    const int64_t past = la.integer(0), cap = la.integer(1);
    if (la.ok()) layerArgs(la, 2, 3, st, past, cap, layers[i]);
  }
  if (!list.ok() || st.B * st.T == 0) return undefinedValue(env);
  Scratch sc(st);
  for (const Layer& L : layers) runLayer(h, st, L, sc);
  return undefinedValue(env);
}

}  // namespace
}  // namespace decode

void registerDecode(napi_env env, napi_value exports) {
  defineFunction(env, exports, "decodeAttention", decode::DecodeAttention);
  defineFunction(env, exports, "decoderLayer", decode::DecoderLayer);
  defineFunction(env, exports, "decoderStack", decode::DecoderStack);
}

}  // namespace graft
