// Flash-style causal/GQA attention over key blocks of kAttnBlock (64) keys. Each task first lays out
// its kv head as K^T [D, Sp] and V (or K) as float rows [S, Dp] (input-sized, never O(T * S)), so
// scores for a block are broadcast-FMAs over 64 key lanes and P @ V / dS @ K are register-blocked row
// combinations (accRows). Forward: online softmax per query row, saving lse. Backward
// (FlashAttention-2): probabilities recomputed from q, k and lse, D_t = rowsum(dO * O), query tiles of
// kAttnTile rows so each gk/gv row is updated once per tile; the five products of a (tile, key block) are
// register-blocked, each loaded K / V / q / dO row feeding several output rows. Included by ops_isa_*.cpp
// after ops_simd.h.

constexpr int64_t BK = kAttnBlock;  // keys per block: 4 vectors of W lanes
constexpr int64_t BQ = kAttnTile;   // query rows per backward tile
constexpr int NB = static_cast<int>(BK / W);  // vectors per key block

// Head rows are padded to a multiple of 16 floats (any W divides it; the bindings use the same stride).
GRAFT_INLINE int64_t roundUpW(int64_t n) { return (n + 15) / 16 * 16; }

// Keys [0, end) that query t may attend to.
GRAFT_INLINE int64_t keyEnd(const AttnShape& s, int64_t t) {
  if (!s.causal) return s.S;
  int64_t e = t + s.S - s.T + 1;
  return e < 0 ? 0 : (e > s.S ? s.S : e);
}

// Scores of R query rows against one key block: out[r * BK + 0:BK] = sum_d a[r * ars + d] * kt[d * lda + 0:BK]
// (kt: K^T with leading dimension lda, zero padded). R rows share every load of kt.
template <int R>
GRAFT_INLINE void scoresBlock(float* out, const float* a, int64_t ars, const float* kt, int64_t lda, int64_t D) {
  vf acc[R][NB];
  for (int r = 0; r < R; r++) {
    for (int v = 0; v < NB; v++) acc[r][v] = splat(0.0f);
  }
  for (int64_t d = 0; d < D; d++) {
    const float* row = kt + d * lda;
    vf k[NB];
    for (int v = 0; v < NB; v++) k[v] = ld(row + v * W);
    for (int r = 0; r < R; r++) {
      const vf ad = splat(a[r * ars + d]);
      for (int v = 0; v < NB; v++) acc[r][v] += ad * k[v];
    }
  }
  for (int r = 0; r < R; r++) {
    for (int v = 0; v < NB; v++) st(out + r * BK + v * W, acc[r][v]);
  }
}
// Query rows scored together in the forward: as many as keep R * NB accumulators in 16 registers.
constexpr int kRows = NB >= 16 ? 1 : 16 / NB > 4 ? 4 : 16 / NB;

// Destination rows sharing each load of `rows`: R * 4 accumulators + 4 loads fit the register file.
constexpr int kAccRows = W >= 16 ? 4 : 2;

// For r < R: dst[r * ds + 0 : NV*W] += sum_j coef[r * cr + j * cj] * rows[j * rs + 0 : NV*W]. The R
// destination rows share every load of a `rows` row (a register-blocked [R, n] x [n, NV*W] product).
template <int R, int NV>
GRAFT_INLINE void accRowsN(float* dst, int64_t ds, const float* coef, int64_t cr, int64_t cj, const float* rows,
                           int64_t rs, int64_t n) {
  vf a[R][NV];
  for (int r = 0; r < R; r++) {
    for (int v = 0; v < NV; v++) a[r][v] = ld(dst + r * ds + v * W);
  }
  for (int64_t j = 0; j < n; j++) {
    const float* row = rows + j * rs;
    vf x[NV];
    for (int v = 0; v < NV; v++) x[v] = ld(row + v * W);
    for (int r = 0; r < R; r++) {
      const vf c = splat(coef[r * cr + j * cj]);
      for (int v = 0; v < NV; v++) a[r][v] += c * x[v];
    }
  }
  for (int r = 0; r < R; r++) {
    for (int v = 0; v < NV; v++) st(dst + r * ds + v * W, a[r][v]);
  }
}
template <int R>
static void accRowsR(float* dst, int64_t ds, const float* coef, int64_t cr, int64_t cj, const float* rows, int64_t rs,
                     int64_t n, int64_t nv) {
  for (int64_t v0 = 0; v0 < nv; v0 += 4) {
    const int64_t off = v0 * W;
    switch (nv - v0 >= 4 ? 4 : nv - v0) {
      case 1: accRowsN<R, 1>(dst + off, ds, coef, cr, cj, rows + off, rs, n); break;
      case 2: accRowsN<R, 2>(dst + off, ds, coef, cr, cj, rows + off, rs, n); break;
      case 3: accRowsN<R, 3>(dst + off, ds, coef, cr, cj, rows + off, rs, n); break;
      default: accRowsN<R, 4>(dst + off, ds, coef, cr, cj, rows + off, rs, n); break;
    }
  }
}
// dst [m, nv*W] (row stride ds) += C [m, n] (element (r, j) at coef[r * cr + j * cj]) x rows [n, nv*W].
static void accRows(float* dst, int64_t ds, const float* coef, int64_t cr, int64_t cj, const float* rows, int64_t rs,
                    int64_t n, int64_t nv, int64_t m) {
  int64_t r = 0;
  for (; r + kAccRows <= m; r += kAccRows) accRowsR<kAccRows>(dst + r * ds, ds, coef + r * cr, cr, cj, rows, rs, n, nv);
  for (; r < m; r++) accRowsR<1>(dst + r * ds, ds, coef + r * cr, cr, cj, rows, rs, n, nv);
}

// K^T of one kv head into kt [D, Sp] (keys past S zero) and/or rows into float [S, Dp] (dims past D zero).
template <class T>
static void transposeHead(const T* src, int64_t S, int64_t D, float* kt, int64_t Sp) {
  for (int64_t d = 0; d < D; d++) {
    float* r = kt + d * Sp;
    for (int64_t s = 0; s < S; s++) r[s] = toF(src[s * D + d]);
    for (int64_t s = S; s < Sp; s++) r[s] = 0.0f;
  }
}
template <class T>
static void padRows(const T* src, int64_t n, int64_t D, float* dst, float scale) {
  const int64_t Dp = roundUpW(D);
  for (int64_t s = 0; s < n; s++) {
    for (int64_t d = 0; d < D; d++) dst[s * Dp + d] = toF(src[s * D + d]) * scale;
    for (int64_t d = D; d < Dp; d++) dst[s * Dp + d] = 0.0f;
  }
}

// Sets lanes j >= n and keys hidden by the key mask to -inf.
GRAFT_INLINE void maskBlock(float* sc, int64_t n, const uint8_t* mask, int64_t s0) {
  for (int64_t j = n; j < BK; j++) sc[j] = -__builtin_inff();
  if (mask) {
    for (int64_t j = 0; j < n; j++) {
      if (!mask[s0 + j]) sc[j] = -__builtin_inff();
    }
  }
}

template <class T>
static void attentionHeadsTyped(const T* Q, const T* K, const T* V, T* O, float* lse, const AttnShape& s, int64_t b,
                                int64_t h0, int64_t h1, float* scratch) {
  const int64_t D = s.D, Dp = roundUpW(D), NV = Dp / W, Sp = (s.S + BK - 1) / BK * BK;
  const int64_t kvh = h0 / (s.Hq / s.Hkv);
  float* kt = scratch;         // [D, Sp]
  float* vr = kt + D * Sp;     // [Sp, Dp]
  float* qv = vr + Sp * Dp;        // [kRows, Dp] scaled query rows
  float* acc = qv + kRows * Dp;    // [kRows, Dp] output accumulators
  float* sc = acc + kRows * Dp;    // [kRows, BK] block scores, then probabilities
  transposeHead(K + (b * s.Hkv + kvh) * s.S * D, s.S, D, kt, Sp);
  padRows(V + (b * s.Hkv + kvh) * s.S * D, s.S, D, vr, 1.0f);
  const uint8_t* mask = s.keyMask ? s.keyMask + b * s.S : nullptr;
  float m[kRows], l[kRows];
  for (int64_t h = h0; h < h1; h++) {
    for (int64_t t0 = 0; t0 < s.T; t0 += kRows) {
      const int64_t nr = s.T - t0 < kRows ? s.T - t0 : kRows;
      const int64_t rowBase = (b * s.Hq + h) * s.T + t0;
      padRows(Q + rowBase * D, nr, D, qv, s.scale);
      for (int64_t j = nr * Dp; j < kRows * Dp; j++) qv[j] = 0.0f;
      for (int64_t j = 0; j < kRows * Dp; j++) acc[j] = 0.0f;
      for (int r = 0; r < kRows; r++) {
        m[r] = -__builtin_inff();
        l[r] = 0.0f;
      }
      const int64_t end = keyEnd(s, t0 + nr - 1);
      for (int64_t s0 = 0; s0 < end; s0 += BK) {
        scoresBlock<kRows>(sc, qv, Dp, kt + s0, Sp, D);
        for (int64_t r = 0; r < nr; r++) {
          const int64_t e = keyEnd(s, t0 + r);
          const int64_t n = e - s0 <= 0 ? 0 : (e - s0 < BK ? e - s0 : BK);
          float* scr = sc + r * BK;
          if (n == 0) {
            for (int64_t j = 0; j < BK; j++) scr[j] = 0.0f;
            continue;
          }
          maskBlock(scr, n, mask, s0);
          vf bmv = ld(scr);
          for (int64_t j = W; j < BK; j += W) bmv = vmax(bmv, ld(scr + j));
          const float bm = hmax(bmv);
          if (bm == -__builtin_inff()) {
            for (int64_t j = 0; j < BK; j++) scr[j] = 0.0f;
            continue;
          }
          const float mNew = m[r] > bm ? m[r] : bm;
          const float alpha = m[r] == -__builtin_inff() ? 0.0f : expf(m[r] - mNew);
          vf ls = splat(0.0f);
          for (int64_t j = 0; j < BK; j += W) {
            vf p = vexp(ld(scr + j) - mNew);
            st(scr + j, p);
            ls += p;
          }
          l[r] = l[r] * alpha + hsum(ls);
          float* ar = acc + r * Dp;
          if (alpha != 1.0f) {
            for (int64_t j = 0; j < Dp; j += W) st(ar + j, ld(ar + j) * alpha);
          }
          m[r] = mNew;
        }
        // acc += P V over the block's keys (lanes past a row's last key hold probability 0)
        accRows(acc, Dp, sc, BK, 1, vr + s0 * Dp, Dp, end - s0 < BK ? end - s0 : BK, NV, nr);
      }
      for (int64_t r = 0; r < nr; r++) {
        T* o = O + (rowBase + r) * D;
        if (l[r] == 0.0f) {
          for (int64_t j = 0; j < D; j++) fromF(0.0f, o + j);
          lse[rowBase + r] = -__builtin_inff();
        } else {
          const float inv = 1.0f / l[r];
          for (int64_t j = 0; j < D; j += W) stS(o + j, 1, chunk(D, j), ld(acc + r * Dp + j) * inv);
          lse[rowBase + r] = m[r] + logf(l[r]);
        }
      }
    }
  }
}
static void attentionHeads(const void* q, const void* k, const void* v, void* out, float* lse, DT dt,
                           const AttnShape& s, int64_t b, int64_t h0, int64_t h1, float* scratch) {
  GRAFT_FLOAT_DISPATCH(dt, T,
                       attentionHeadsTyped(static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v),
                                           static_cast<T*>(out), lse, s, b, h0, h1, scratch));
}

template <class T>
static void attentionBackwardTyped(const T* Q, const T* K, const T* V, const T* O, const float* lse, const T* GO, T* GQ,
                                   float* gk, float* gv, const AttnShape& s, int64_t b, int64_t kvh, int64_t h0,
                                   int64_t h1, float* scratch) {
  const int64_t D = s.D, Dp = roundUpW(D), NV = Dp / W, Sp = (s.S + BK - 1) / BK * BK;
  float* kt = scratch;          // K^T [D, Sp]
  float* vt = kt + D * Sp;      // V^T [D, Sp]
  float* kr = vt + D * Sp;      // K rows [Sp, Dp]
  float* qt = kr + Sp * Dp;     // query tile [BQ, Dp]
  float* dot = qt + BQ * Dp;    // dO tile [BQ, Dp]
  float* gqt = dot + BQ * Dp;   // gq tile accumulators [BQ, Dp]
  float* P = gqt + BQ * Dp;     // [BQ, BK] probabilities
  float* dS = P + BK * BQ;      // [BQ, BK] dS * scale
  float* Dr = dS + BK * BQ;     // [BQ] rowsum(dO * O)
  float* Lr = Dr + BQ;          // [BQ] lse
  const T* kHead = K + (b * s.Hkv + kvh) * s.S * D;
  transposeHead(kHead, s.S, D, kt, Sp);
  transposeHead(V + (b * s.Hkv + kvh) * s.S * D, s.S, D, vt, Sp);
  padRows(kHead, s.S, D, kr, 1.0f);
  const uint8_t* mask = s.keyMask ? s.keyMask + b * s.S : nullptr;
  for (int64_t h = h0; h < h1; h++) {
    for (int64_t t0 = 0; t0 < s.T; t0 += BQ) {
      const int64_t nq = s.T - t0 < BQ ? s.T - t0 : BQ;
      const int64_t rowBase = (b * s.Hq + h) * s.T + t0;
      padRows(Q + rowBase * D, nq, D, qt, 1.0f);
      padRows(GO + rowBase * D, nq, D, dot, 1.0f);
      for (int64_t j = nq * Dp; j < BQ * Dp; j++) qt[j] = dot[j] = 0.0f;
      for (int64_t j = 0; j < nq * Dp; j++) gqt[j] = 0.0f;
      for (int64_t i = 0; i < nq; i++) {
        vf acc = splat(0.0f);
        const T* o = O + (rowBase + i) * D;
        for (int64_t j = 0; j < D; j += W) acc += ld(dot + i * Dp + j) * ldS(o + j, 1, chunk(D, j));
        Dr[i] = hsum(acc);
        Lr[i] = lse[rowBase + i];
      }
      const int64_t end = keyEnd(s, t0 + nq - 1);
      for (int64_t s0 = 0; s0 < end; s0 += BK) {
        const int64_t n = end - s0 < BK ? end - s0 : BK;
        // scores q . K^T and dO . V^T of the tile's rows (rows past nq are zero), kRows rows per pass
        for (int64_t i = 0; i < nq; i += kRows) {
          scoresBlock<kRows>(P + i * BK, qt + i * Dp, Dp, kt + s0, Sp, D);
          scoresBlock<kRows>(dS + i * BK, dot + i * Dp, Dp, vt + s0, Sp, D);
        }
        for (int64_t i = 0; i < nq; i++) {
          const int64_t e = keyEnd(s, t0 + i);
          const int64_t ni = e - s0 < 0 ? 0 : (e - s0 < n ? e - s0 : n);
          float* sc = P + i * BK;
          float* dp = dS + i * BK;
          if (ni == 0 || Lr[i] == -__builtin_inff()) {
            for (int64_t j = 0; j < BK; j++) sc[j] = dp[j] = 0.0f;
            continue;
          }
          maskBlock(sc, ni, mask, s0);
          for (int64_t j = 0; j < BK; j += W) {
            vf p = vexp(ld(sc + j) * s.scale - Lr[i]);
            st(sc + j, p);
            st(dp + j, p * (ld(dp + j) - Dr[i]) * s.scale);
          }
        }
        accRows(gqt, Dp, dS, BK, 1, kr + s0 * Dp, Dp, n, NV, nq);             // gq += dS K
        accRows(gv + s0 * Dp, Dp, P, 1, BK, dot, Dp, nq, NV, n);             // gv += P^T dO
        accRows(gk + s0 * Dp, Dp, dS, 1, BK, qt, Dp, nq, NV, n);             // gk += dS^T q
      }
      for (int64_t i = 0; i < nq; i++) {
        T* gq = GQ + (rowBase + i) * D;
        for (int64_t j = 0; j < D; j += W) stS(gq + j, 1, chunk(D, j), ld(gqt + i * Dp + j));
      }
    }
  }
}
// gk, gv: float accumulators [S, roundUp(D, 16)] (row stride padded so rows stay vector aligned).
static void attentionBackwardGroup(const void* q, const void* k, const void* v, const void* out, const float* lse,
                                   const void* gOut, void* gq, float* gk, float* gv, DT dt, const AttnShape& s, int64_t b,
                                   int64_t kvh, int64_t h0, int64_t h1, float* scratch) {
  GRAFT_FLOAT_DISPATCH(dt, T,
                       attentionBackwardTyped(static_cast<const T*>(q), static_cast<const T*>(k),
                                              static_cast<const T*>(v), static_cast<const T*>(out), lse,
                                              static_cast<const T*>(gOut), static_cast<T*>(gq), gk, gv, s, b, kvh, h0,
                                              h1, scratch));
}
