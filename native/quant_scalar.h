// Scalar helpers of the quant kernels (fp16 / bf16 conversion, stores). Everything is `static` so each
// per-ISA translation unit keeps its own copy (nothing for the linker to merge across targets).
#pragma once
#include <cstdint>
#include <cstring>

namespace graft {
namespace quant {

static inline float qF16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
  if (exp == 0x1f) bits = sign | 0x7f800000u | (man << 13);  // inf / nan
  else if (exp != 0) bits = sign | ((exp + 112) << 23) | (man << 13);
  else if (man == 0) bits = sign;
  else {  // subnormal: normalise
    int e = -1;
    do {
      man <<= 1;
      e++;
    } while (!(man & 0x400u));
    bits = sign | (static_cast<uint32_t>(112 - e) << 23) | ((man & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

static inline float qBf16ToF32(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

static inline uint16_t qF32ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline void qStore(void* y, int64_t i, bool bf16, float v) {
  if (bf16) static_cast<uint16_t*>(y)[i] = qF32ToBf16(v);
  else static_cast<float*>(y)[i] = v;
}

}  // namespace quant
}  // namespace graft
