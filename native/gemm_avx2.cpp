// AVX2 + FMA GEMM: a 6x16 ymm microkernel (12 accumulators) over the generic packers, and the ymm FMA
// peak loop. Compiled with a target pragma and only reached when detectIsa() reports avx2; no
// header templates here (see gemm_avx512.cpp).
// Headers first: their inline functions and intrinsics then keep their own targets, not this file's.
#include <immintrin.h>

#include "gemm.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma")


namespace graft {
namespace gemm {
namespace {

constexpr int kMr = 6, kNv = 2;  // 6 rows x 2 ymm (16 columns)

void microAvx2(int64_t ksteps, const void* ap, const void* bp, float* c, int64_t ldc, float alpha, float beta) {
  const float* a = static_cast<const float*>(ap);
  const float* b = static_cast<const float*>(bp);
  __m256 acc[kMr][kNv];
#pragma GCC unroll 8
  for (int i = 0; i < kMr; i++) {
    for (int v = 0; v < kNv; v++) acc[i][v] = _mm256_setzero_ps();
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 15), _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (int64_t q = 0; q < ksteps; q++) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 8
    for (int i = 0; i < kMr; i++) {
      const __m256 av = _mm256_broadcast_ss(a + i);
      acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
    }
    a += kMr;
    b += kNv * 8;
  }
  const __m256 va = _mm256_set1_ps(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 8
    for (int i = 0; i < kMr; i++)
      for (int v = 0; v < kNv; v++) _mm256_storeu_ps(c + i * ldc + v * 8, _mm256_mul_ps(va, acc[i][v]));
  } else {
    const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 8
    for (int i = 0; i < kMr; i++)
      for (int v = 0; v < kNv; v++) {
        float* p = c + i * ldc + v * 8;
        _mm256_storeu_ps(p, _mm256_fmadd_ps(va, acc[i][v], _mm256_mul_ps(vb, _mm256_loadu_ps(p))));
      }
  }
}

// A block 144 x 256 floats (144 KiB) for the L2, 16 x 256 B micro-panel (16 KiB) for the L1.
const KernelSet kAvx2F32 = {"avx2-f32 6x16", kMr, kNv * 8, 1, 4, 144, 256, 4096,
                            packGenericF32, packGenericF32, microAvx2, nullptr};
const KernelSet kAvx2Bf16 = {"avx2-bf16->f32 6x16", kMr, kNv * 8, 1, 4, 144, 256, 4096,
                             packGenericBf16ToF32, packGenericBf16ToF32, microAvx2, nullptr};

}  // namespace

double peakChunkAvx2(int64_t iters) {
  __m256 acc[12];
  for (int j = 0; j < 12; j++) acc[j] = _mm256_set1_ps(static_cast<float>(j));
  const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(0.001f);
  for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 12
    for (int j = 0; j < 12; j++) acc[j] = _mm256_fmadd_ps(acc[j], x, y);
  }
  __m256 s = acc[0];
  for (int j = 1; j < 12; j++) s = _mm256_add_ps(s, acc[j]);
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  volatile float sink = out[0];
  (void)sink;
  return static_cast<double>(iters) * 12 * 8 * 2;
}

const KernelSet* avx2Kernels(DType a) { return a == DType::BF16 ? &kAvx2Bf16 : &kAvx2F32; }

}  // namespace gemm
}  // namespace graft
#pragma GCC pop_options
