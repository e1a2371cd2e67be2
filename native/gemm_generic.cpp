// Portable GEMM pieces: the packers used by the generic and AVX2 kernel sets (float32, and bfloat16
// converted to float32 while packing), and a plain C++ 4x8 microkernel that the compiler
// vectorises with the baseline SSE2 of x86-64.
#include <algorithm>
#include <cstring>

#include "gemm.h"

namespace graft {
namespace gemm {
namespace {

inline float loadF32(const float* p) { return *p; }
inline float loadF32(const uint16_t* p) {
  uint32_t bits = static_cast<uint32_t>(*p) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

template <typename T>
void packGeneric(const T* src, int64_t si, int64_t sp, int64_t count, int64_t kc, int w, float* dst) {
  for (int64_t i0 = 0; i0 < count; i0 += w) {
    const int64_t wn = std::min<int64_t>(w, count - i0);
    float* panel = dst + (i0 / w) * kc * w;
    if (sp == 1) {
      // Each index's depth run is contiguous: walk it, writing with stride w.
      for (int64_t i = 0; i < wn; i++) {
        const T* row = src + (i0 + i) * si;
        for (int64_t q = 0; q < kc; q++) panel[q * w + i] = loadF32(row + q);
      }
    } else {
      // Consecutive indices are contiguous (si == 1): copy one depth step at a time.
      for (int64_t q = 0; q < kc; q++) {
        const T* col = src + q * sp + i0;
        float* out = panel + q * w;
        for (int64_t i = 0; i < wn; i++) out[i] = loadF32(col + i);
      }
    }
    if (wn < w)
      for (int64_t q = 0; q < kc; q++) std::fill(panel + q * w + wn, panel + q * w + w, 0.0f);
  }
}

constexpr int kMr = 4, kNr = 8;

void microGeneric(int64_t ksteps, const void* ap, const void* bp, float* c, int64_t ldc, float alpha, float beta) {
  const float* a = static_cast<const float*>(ap);
  const float* b = static_cast<const float*>(bp);
  float acc[kMr][kNr] = {};
  for (int64_t q = 0; q < ksteps; q++) {
    for (int i = 0; i < kMr; i++) {
      const float ai = a[q * kMr + i];
      for (int j = 0; j < kNr; j++) acc[i][j] += ai * b[q * kNr + j];
    }
  }
  for (int i = 0; i < kMr; i++) {
    float* row = c + i * ldc;
    if (beta == 0.0f)
      for (int j = 0; j < kNr; j++) row[j] = alpha * acc[i][j];
    else
      for (int j = 0; j < kNr; j++) row[j] = alpha * acc[i][j] + beta * row[j];
  }
}

const KernelSet kGenericF32 = {"generic-f32 4x8", kMr, kNr, 1, 4, 128, 256, 2048,
                               packGenericF32, packGenericF32, microGeneric, nullptr};
const KernelSet kGenericBf16 = {"generic-bf16->f32 4x8", kMr, kNr, 1, 4, 128, 256, 2048,
                                packGenericBf16ToF32, packGenericBf16ToF32, microGeneric, nullptr};

}  // namespace

void packGenericF32(const void* src, int64_t si, int64_t sp, int64_t count, int64_t kc, int w, void* dst) {
  packGeneric(static_cast<const float*>(src), si, sp, count, kc, w, static_cast<float*>(dst));
}

void packGenericBf16ToF32(const void* src, int64_t si, int64_t sp, int64_t count, int64_t kc, int w, void* dst) {
  packGeneric(static_cast<const uint16_t*>(src), si, sp, count, kc, w, static_cast<float*>(dst));
}

const KernelSet* genericKernels(DType a) { return a == DType::BF16 ? &kGenericBf16 : &kGenericF32; }

}  // namespace gemm
}  // namespace graft
