// Decode attention kernel (see ops_kernels.h): the few query rows of a decode step against the cached
// keys / values of one kv head, for all G query heads that share it (GQA). Keys are laid out K^T a
// block of W at a time (in scratch, float32), so the scores of a block are W-wide FMAs with no
// horizontal sums, and each key block is converted once for the G * T rows; the S scores of a row are
// kept (O(S) scratch), then softmaxed and multiplied into V row by row. float32 math, exp as the
// softmax kernels. Included by ops_isa_impl.h inside an ISA namespace. No include guard on purpose.

// Keys s0 .. s0 + cnt - 1 (cnt <= W) of one kv head as kt [D, W] float32, lanes past cnt zero.
template <class T>
GRAFT_INLINE void transposeKeys(const T* k, int64_t kvRow, int64_t cnt, int64_t D, float* kt) {
#if GRAFT_VEC_BYTES == 64
  // AVX-512: a gather reads one column of the block (16 keys) per instruction; for bfloat16 each
  // 32-bit gather brings two neighbouring columns, split by a shift and a mask.
  if (kvRow <= (int64_t(1) << 26)) {
    const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(static_cast<int32_t>(kvRow)));
    const __mmask16 m = cnt >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << cnt) - 1);
    int64_t d = 0;
    if (sizeof(T) == 2) {
      const __m512i hi = _mm512_set1_epi32(static_cast<int32_t>(0xffff0000u));
      for (; d + 2 <= D; d += 2) {
        const __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, rows, k + d, 2);
        _mm512_storeu_si512(kt + d * W, _mm512_slli_epi32(g, 16));
        _mm512_storeu_si512(kt + (d + 1) * W, _mm512_and_si512(g, hi));
      }
    } else {
      for (; d < D; d++) _mm512_storeu_ps(kt + d * W, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, rows, k + d, 4));
    }
    for (; d < D; d++)
      for (int64_t j = 0; j < W; j++) kt[d * W + j] = j < cnt ? toF(k[j * kvRow + d]) : 0.0f;
    return;
  }
#endif
  for (int64_t j = 0; j < W; j++) {
    if (j < cnt) {
      const T* kr = k + j * kvRow;
      for (int64_t d = 0; d < D; d++) kt[d * W + j] = toF(kr[d]);
    } else {
      for (int64_t d = 0; d < D; d++) kt[d * W + j] = 0.0f;
    }
  }
}

// Rows r0 .. r0 + 3 of the output: sum over keys s in [s0, s1) of p[s] * V[s], for the D columns,
// 4 vectors of columns at a time, added into acc (a row's keys in order, as the one-row loop).
template <class T>
GRAFT_INLINE void pvBlock(const float* const* p, const T* v, int64_t kvRow, int64_t s0, int64_t s1, int64_t d0, int64_t nc,
                          int64_t c, vf (*acc)[4]) {
  for (int64_t s = s0; s < s1; s++) {
    const T* vr = v + s * kvRow + d0;
    vf vv[4];
    for (int64_t j = 0; j < 4; j++) vv[j] = j < nc ? (j < nc - 1 || c == W ? ld(vr + j * W) : ldS(vr + j * W, 1, c)) : splat(0.0f);
    for (int i = 0; i < 4; i++) {
      const vf pi = splat(p[i][s]);
      for (int64_t j = 0; j < 4; j++) acc[i][j] += pi * vv[j];
    }
  }
}

template <class T>
static void decodeAttnGroupTyped(const T* q, int64_t qH, int64_t qT, const T* k, const T* v, int64_t kvRow, T* out,
                                 int64_t oH, int64_t oT, float* lse, int64_t G, int64_t Tq, int64_t S, int64_t D,
                                 bool causal, const uint8_t* mask, float scale, float* scratch) {
  const int64_t R = G * Tq, R4 = (R + 3) / 4 * 4;
  const int64_t Dp = (D + 15) / 16 * 16, Sp = (S + 15) / 16 * 16;
  float* qf = scratch;            // [R4, Dp] scaled queries (rows past R zero)
  float* sc = qf + R4 * Dp;       // [R4, Sp] scores, then probabilities
  float* kt = sc + R4 * Sp;       // [D, W] one key block, transposed
  for (int64_t r = 0; r < R4; r++) {
    if (r >= R) {
      for (int64_t d = 0; d < D; d++) qf[r * Dp + d] = 0.0f;
      continue;
    }
    const T* qr = q + (r / Tq) * qH + (r % Tq) * qT;
    for (int64_t d = 0; d < D; d++) qf[r * Dp + d] = toF(qr[d]) * scale;
  }
  // Scores, W keys by 4 rows at a time (two accumulators per row: even and odd d).
  for (int64_t s0 = 0; s0 < S; s0 += W) {
    transposeKeys(k + s0 * kvRow, kvRow, S - s0 < W ? S - s0 : W, D, kt);
    for (int64_t r0 = 0; r0 < R4; r0 += 4) {
      const float* q0 = qf + r0 * Dp;
      vf a0[4], a1[4];
      for (int i = 0; i < 4; i++) a0[i] = a1[i] = splat(0.0f);
      int64_t d = 0;
      for (; d + 2 <= D; d += 2) {
        const vf k0 = ld(kt + d * W), k1 = ld(kt + (d + 1) * W);
        for (int i = 0; i < 4; i++) {
          a0[i] += splat(q0[i * Dp + d]) * k0;
          a1[i] += splat(q0[i * Dp + d + 1]) * k1;
        }
      }
      if (d < D) {
        const vf k0 = ld(kt + d * W);
        for (int i = 0; i < 4; i++) a0[i] += splat(q0[i * Dp + d]) * k0;
      }
      for (int i = 0; i < 4; i++) st(sc + (r0 + i) * Sp + s0, a0[i] + a1[i]);
    }
  }
  // Softmax per row; last[r]: the keys it attends are below it (masked ones have probability 0).
  int64_t last[4];
  float inv[4];
  for (int64_t r0 = 0; r0 < R4; r0 += 4) {
    int64_t lo = S, hi = 0;
    const float* p[4];
    for (int i = 0; i < 4; i++) {
      const int64_t r = r0 + i;
      float* pr = sc + r * Sp;
      p[i] = pr;
      last[i] = 0;
      inv[i] = 0.0f;
      if (r >= R) {
        for (int64_t s = 0; s < Sp; s++) pr[s] = 0.0f;
        continue;
      }
      const int64_t t = r % Tq;
      const int64_t n = causal ? t + (S - Tq) + 1 : S;  // keys s < n are not in the future
      float mx = -__builtin_inff();
      for (int64_t s = 0; s < Sp; s++) {
        if (s >= n || (mask && mask[s] == 0)) pr[s] = -__builtin_inff();
        else mx = pr[s] > mx ? pr[s] : mx;
      }
      if (mx == -__builtin_inff()) {  // nothing to attend: zeros out
        for (int64_t s = 0; s < Sp; s++) pr[s] = 0.0f;
        if (lse) lse[r] = -__builtin_inff();
        continue;
      }
      vf sum = splat(0.0f);
      for (int64_t s = 0; s < Sp; s += W) {
        const vf e = vexp(ld(pr + s) - mx);  // masked keys: exp(-inf) = 0
        st(pr + s, e);
        sum += e;
      }
      const float total = hsum(sum);
      inv[i] = 1.0f / total;
      last[i] = n < S ? n : S;
      if (lse) lse[r] = mx + logf(total);
    }
    for (int i = 0; i < 4; i++) {
      if (r0 + i >= R) continue;
      lo = last[i] < lo ? last[i] : lo;
      hi = last[i] > hi ? last[i] : hi;
    }
    // P V: the keys every row of the block attends together, then each row's own tail.
    for (int64_t d0 = 0; d0 < D; d0 += 4 * W) {
      const int64_t rem = D - d0, nc = rem >= 4 * W ? 4 : (rem + W - 1) / W, c = rem >= 4 * W ? W : rem - (nc - 1) * W;
      vf acc[4][4];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = splat(0.0f);
      pvBlock(p, v, kvRow, 0, lo, d0, nc, c, acc);
      for (int i = 0; i < 4; i++) {
        if (r0 + i >= R) continue;
        for (int64_t s = lo; s < last[i]; s++) {
          const T* vr = v + s * kvRow + d0;
          const vf pi = splat(p[i][s]);
          for (int64_t j = 0; j < nc; j++) acc[i][j] += pi * (j < nc - 1 || c == W ? ld(vr + j * W) : ldS(vr + j * W, 1, c));
        }
        const int64_t r = r0 + i;
        T* o = out + (r / Tq) * oH + (r % Tq) * oT + d0;
        for (int64_t j = 0; j < nc; j++) stS(o + j * W, 1, j < nc - 1 ? W : c, acc[i][j] * inv[i]);
      }
    }
  }
}
static void decodeAttentionGroup(const void* q, int64_t qH, int64_t qT, const void* k, const void* v, int64_t kvRow,
                                 void* out, int64_t oH, int64_t oT, float* lse, DT dt, int64_t G, int64_t T, int64_t S,
                                 int64_t D, bool causal, const uint8_t* mask, float scale, float* scratch) {
  GRAFT_FLOAT_DISPATCH(dt, E,
                       decodeAttnGroupTyped(static_cast<const E*>(q), qH, qT, static_cast<const E*>(k),
                                            static_cast<const E*>(v), kvRow, static_cast<E*>(out), oH, oT, lse, G, T,
                                            S, D, causal, mask, scale, scratch));
}
