// Decode attention kernel (see ops_kernels.h): the few query rows of a decode step against the cached
// keys / values of one kv head, for all G query heads that share it (GQA). Keys are laid out K^T a
// block of W at a time (in scratch, float32), so the scores of a block are W-wide FMAs with no
// horizontal sums, and each key block is converted once for the G * T rows; the S scores of a row are
// kept (O(S) scratch), then softmaxed and multiplied into V row by row. float32 math, exp as the
// softmax kernels. Included by ops_isa_impl.h inside an ISA namespace. No include guard on purpose.

template <class T>
static void decodeAttnGroupTyped(const T* q, int64_t qH, int64_t qT, const T* k, const T* v, int64_t kvRow, T* out,
                                 int64_t oH, int64_t oT, float* lse, int64_t G, int64_t Tq, int64_t S, int64_t D,
                                 bool causal, const uint8_t* mask, float scale, float* scratch) {
  const int64_t R = G * Tq;
  const int64_t Dp = (D + 15) / 16 * 16, Sp = (S + 15) / 16 * 16;
  float* qf = scratch;           // [R, Dp] scaled queries
  float* sc = qf + R * Dp;       // [R, Sp] scores, then probabilities
  float* kt = sc + R * Sp;       // [D, W] one key block, transposed
  for (int64_t r = 0; r < R; r++) {
    const T* qr = q + (r / Tq) * qH + (r % Tq) * qT;
    for (int64_t d = 0; d < D; d++) qf[r * Dp + d] = toF(qr[d]) * scale;
  }
  // Scores, W keys at a time.
  for (int64_t s0 = 0; s0 < S; s0 += W) {
    const int64_t cnt = S - s0 < W ? S - s0 : W;
    for (int64_t j = 0; j < W; j++) {
      if (j < cnt) {
        const T* kr = k + (s0 + j) * kvRow;
        for (int64_t d = 0; d < D; d++) kt[d * W + j] = toF(kr[d]);
      } else {
        for (int64_t d = 0; d < D; d++) kt[d * W + j] = 0.0f;
      }
    }
    for (int64_t r = 0; r < R; r++) {
      const float* qr = qf + r * Dp;
      vf a0 = splat(0.0f), a1 = a0;
      int64_t d = 0;
      for (; d + 2 <= D; d += 2) {
        a0 += splat(qr[d]) * ld(kt + d * W);
        a1 += splat(qr[d + 1]) * ld(kt + (d + 1) * W);
      }
      if (d < D) a0 += splat(qr[d]) * ld(kt + d * W);
      st(sc + r * Sp + s0, a0 + a1);
    }
  }
  for (int64_t r = 0; r < R; r++) {
    const int64_t g = r / Tq, t = r % Tq;
    float* p = sc + r * Sp;
    const int64_t n = causal ? t + (S - Tq) + 1 : S;  // keys s < n are not in the future
    float mx = -__builtin_inff();
    for (int64_t s = 0; s < Sp; s++) {
      if (s >= n || (mask && mask[s] == 0)) p[s] = -__builtin_inff();
      else mx = p[s] > mx ? p[s] : mx;
    }
    T* o = out + g * oH + t * oT;
    if (mx == -__builtin_inff()) {
      for (int64_t d = 0; d < D; d++) fromF(0.0f, o + d);
      if (lse) lse[r] = -__builtin_inff();
      continue;
    }
    vf sum = splat(0.0f);
    for (int64_t s = 0; s < Sp; s += W) {
      const vf e = vexp(ld(p + s) - mx);  // masked keys: exp(-inf) = 0
      st(p + s, e);
      sum += e;
    }
    const float total = hsum(sum), inv = 1.0f / total;
    const int64_t last = n < S ? n : S;
    for (int64_t d = 0; d < D; d += W) {
      const int64_t c = D - d < W ? D - d : W;
      vf acc = splat(0.0f);
      if (c == W) {
        for (int64_t s = 0; s < last; s++) acc += splat(p[s]) * ld(v + s * kvRow + d);
      } else {
        for (int64_t s = 0; s < last; s++) acc += splat(p[s]) * ldS(v + s * kvRow + d, 1, c);
      }
      stS(o + d, 1, c, acc * inv);
    }
    if (lse) lse[r] = mx + logf(total);
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
