// 16x16 transpose of 32-bit lanes in zmm registers, for the AVX-512 GEMM files. Include it after
// the file's target pragma: it is compiled for that target, and its anonymous namespace keeps each
// file's copy its own (no inline function the linker could merge across ISAs).
#pragma once
#include <immintrin.h>

namespace graft {
namespace gemm {
namespace {

// 16x16 transpose of 32-bit lanes: r[j] lane q  ->  r[q] lane j.
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // r[4g + c], 128-bit lane L: rows 4g..4g+3 at column c + 4L.
  for (int g = 0; g < 4; g++) {
    const __m512d a0 = _mm512_castps_pd(t[4 * g]), a1 = _mm512_castps_pd(t[4 * g + 1]);
    const __m512d a2 = _mm512_castps_pd(t[4 * g + 2]), a3 = _mm512_castps_pd(t[4 * g + 3]);
    r[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
    r[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
    r[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
    r[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
  }
  // Gather lane L of the four row groups: output row c + 4L.
  for (int c = 0; c < 4; c++) {
    const __m512 s0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
    const __m512 s1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
    const __m512 s2 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
    const __m512 s3 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
    t[c + 0] = _mm512_shuffle_f32x4(s0, s2, 0x88);
    t[c + 8] = _mm512_shuffle_f32x4(s0, s2, 0xdd);
    t[c + 4] = _mm512_shuffle_f32x4(s1, s3, 0x88);
    t[c + 12] = _mm512_shuffle_f32x4(s1, s3, 0xdd);
  }
  for (int i = 0; i < 16; i++) r[i] = t[i];
}

}  // namespace
}  // namespace gemm
}  // namespace graft
