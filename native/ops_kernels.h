// ISA-neutral view of the non-GEMM kernels ("ops"). The kernels themselves are written once in
// ops_simd.h / ops_k_*.h and compiled three times (ops_isa_generic.cpp, ops_isa_avx2.cpp,
// ops_isa_avx512.cpp), each translation unit under its own `#pragma GCC target`; kernels() picks the
// table matching detectIsa(). Kernels work on row ranges and never allocate or spawn threads: the
// bindings (ops_binding*.cpp) validate arguments, split work with parallelFor and own scratch memory.
#pragma once
#include <cstdint>

namespace graft {

enum class DT : int { F32 = 0, BF16 = 1, I32 = 2 };

enum UnaryOpCode : int {
  kNeg, kExp, kLog, kSqrt, kRsqrt, kTanh, kSigmoid, kSilu, kGelu, kGeluErf, kRelu, kAbs, kSin, kCos,
  kSquare, kReciprocal, kUnaryCount
};
enum BinaryOpCode : int {
  kAdd, kSub, kMul, kDiv, kPow, kMaximum, kMinimum, kEq, kNe, kLt, kLe, kGt, kGe, kBinaryCount
};
enum ReduceOpCode : int { kSum, kMean, kMax, kMin, kArgmax, kArgmin, kReduceCount };

struct AttnShape {
  int64_t B, Hq, Hkv, T, S, D;
  float scale;
  bool causal;
  const uint8_t* keyMask;  // [B, S] or null
};

struct OpsKernels {
  // Elementwise over one strided row of n elements (strides in elements; 0 broadcasts).
  void (*castRow)(const void* src, DT sdt, int64_t ss, void* dst, DT ddt, int64_t ds, int64_t n);
  void (*fillRow)(void* dst, DT dt, int64_t ds, double value, int64_t n);
  void (*unaryRow)(int op, const void* x, int64_t sx, void* y, int64_t sy, DT dt, int64_t n);
  void (*unaryBackwardRow)(int op, const void* x, int64_t sx, const void* gy, int64_t sgy, void* gx, int64_t sgx,
                           DT dt, int64_t n);
  void (*binaryRow)(int op, const void* a, int64_t sa, const void* b, int64_t sb, void* out, int64_t so, DT dt,
                    int64_t n);
  void (*whereRow)(const void* c, DT cdt, int64_t sc, const void* a, int64_t sa, const void* b, int64_t sb,
                   void* out, int64_t so, DT dt, int64_t n);
  // x [outer, n, inner]; processes outer indices [o0, o1) and inner indices [i0, i1).
  void (*reduce)(int op, const void* x, DT dt, int64_t o0, int64_t o1, int64_t n, int64_t inner, int64_t i0,
                 int64_t i1, void* out);

  // Row kernels over rows [r0, r1) of [N, C] (or [N, V]) matrices.
  void (*softmaxRows)(const void* x, void* y, DT dt, int64_t r0, int64_t r1, int64_t C, bool log);
  void (*softmaxBackwardRows)(const void* y, const void* gy, void* gx, DT dt, int64_t r0, int64_t r1, int64_t C,
                              bool log);
  void (*crossEntropyRows)(const void* logits, DT dt, const int32_t* targets, int64_t r0, int64_t r1, int64_t V,
                           int64_t ignoreIndex, float eps, float* loss, float* lse);
  void (*crossEntropyBackwardRows)(const void* logits, DT dt, const int32_t* targets, const float* lse,
                                   const float* gLoss, int64_t r0, int64_t r1, int64_t V, int64_t ignoreIndex,
                                   float eps, void* gLogits);
  void (*rmsnormRows)(const void* x, const void* w, void* y, float* rstd, DT dt, int64_t r0, int64_t r1, int64_t C,
                      float eps);
  // gwAcc (float [C], may be null) receives this range's sum of gy * x * rstd.
  void (*rmsnormBackwardRows)(const void* x, const void* w, const float* rstd, const void* gy, void* gx,
                              float* gwAcc, DT dt, int64_t r0, int64_t r1, int64_t C);
  void (*layernormRows)(const void* x, const void* w, const void* b, void* y, float* mean, float* rstd, DT dt,
                        int64_t r0, int64_t r1, int64_t C, float eps);
  void (*layernormBackwardRows)(const void* x, const void* w, const float* mean, const float* rstd, const void* gy,
                                void* gx, float* gwAcc, float* gbAcc, DT dt, int64_t r0, int64_t r1, int64_t C);
  // Rows are (b, t) pairs of x [B*T, H, D]; cosSin holds [B*T, rotaryDim/2] cos then sin pairs.
  void (*ropeRows)(const void* x, void* out, DT dt, const float* cosSin, int64_t r0, int64_t r1, int64_t H,
                   int64_t D, int64_t rotaryDim, bool interleaved);
  // One AdamW step over [i0, i1). omb1 = 1 - beta1 and omb2 = 1 - beta2 come in computed in double
  // (1 - float(0.999) is off by 1e-5 relative); decay = 1 - lr * weightDecay; bc = 1 - beta^step.
  void (*adamw)(float* p, const float* g, float* m, float* v, int64_t i0, int64_t i1, float lr, float beta1,
                float omb1, float beta2, float omb2, float eps, float decay, float bc1, float bc2);

  // Attention forward for query heads [h0, h1) of batch b, all in one kv group (they share the laid-out
  // K^T / V). scratch: attnScratchFloats(S, D) floats.
  void (*attentionHeads)(const void* q, const void* k, const void* v, void* out, float* lse, DT dt,
                         const AttnShape& s, int64_t b, int64_t h0, int64_t h1, float* scratch);
  // Attention backward for query heads [h0, h1) of one kv group (b, kvh): writes gq rows of those heads
  // and accumulates (+=) into the float buffers gk, gv [S, roundUp(D, 16)]. scratch: attnScratchFloats(S, D).
  void (*attentionBackwardGroup)(const void* q, const void* k, const void* v, const void* out, const float* lse,
                                 const void* gOut, void* gq, float* gk, float* gv, DT dt, const AttnShape& s,
                                 int64_t b, int64_t kvh, int64_t h0, int64_t h1, float* scratch);

  // Decode attention (ops_k_decode.h) for the G query heads of one kv head, T query rows each: q row
  // (g, t) at q + g * qH + t * qT (out likewise; lse[g * T + t] when lse is not null), key / value row s
  // at k + s * kvRow; causal rows see keys s <= t + S - T; mask [S] (1 = attend) may be null.
  // scratch: decodeAttnScratchFloats(G * T, S, D).
  void (*decodeAttentionGroup)(const void* q, int64_t qH, int64_t qT, const void* k, const void* v, int64_t kvRow,
                               void* out, int64_t oH, int64_t oT, float* lse, DT dt, int64_t G, int64_t T, int64_t S,
                               int64_t D, bool causal, const uint8_t* mask, float scale, float* scratch);

  // SwiGLU over dense elements [i0, i1): o = silu(g) * u, and its backward (gg, gu overwritten).
  void (*swigluRange)(const void* g, const void* u, void* o, DT dt, int64_t i0, int64_t i1);
  void (*swigluBackwardRange)(const void* g, const void* u, const void* go, void* gg, void* gu, DT dt, int64_t i0,
                              int64_t i1);
};

constexpr int64_t kAttnBlock = 64;  // keys per online-softmax block
constexpr int64_t kAttnTile = 16;   // query rows per backward tile
// Scratch floats one attention task needs: K^T, V^T and K/V rows of its kv head (input-sized, O(S * D),
// never O(T * S)) plus per-block buffers.
inline int64_t attnScratchFloats(int64_t S, int64_t D) {
  const int64_t Dp = (D + 15) / 16 * 16, Sp = (S + kAttnBlock - 1) / kAttnBlock * kAttnBlock;
  return 2 * D * Sp + Sp * Dp + 3 * kAttnTile * Dp + 2 * kAttnBlock * kAttnTile + 4 * kAttnBlock + 2 * kAttnTile +
         8 * Dp + 64;
}

inline int64_t decodeAttnScratchFloats(int64_t rows, int64_t S, int64_t D) {
  return (rows + 3) / 4 * 4 * ((D + 15) / 16 * 16 + (S + 15) / 16 * 16) + D * 16 + 64;
}

const OpsKernels& kernels();

namespace ops_generic { void fillKernels(OpsKernels& k); }
namespace ops_avx2 { void fillKernels(OpsKernels& k); }
namespace ops_avx512 { void fillKernels(OpsKernels& k); }

}  // namespace graft
