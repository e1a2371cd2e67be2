// SIMD building blocks for the ops kernels, written with GCC vector extensions of the target's native
// width GRAFT_VEC_BYTES (64 AVX-512 zmm, 32 AVX2 ymm, 16 SSE2 xmm). Included (inside an ISA namespace,
// after the std headers) by each ops_isa_*.cpp. No include guard on purpose.

typedef float vf __attribute__((vector_size(GRAFT_VEC_BYTES)));
typedef int32_t vi __attribute__((vector_size(GRAFT_VEC_BYTES)));
typedef uint32_t vu __attribute__((vector_size(GRAFT_VEC_BYTES)));
typedef uint16_t vh __attribute__((vector_size(GRAFT_VEC_BYTES / 2)));
constexpr int64_t W = GRAFT_VEC_BYTES / 4;  // float lanes

// Hot helpers must inline: a 64-byte vector passed to an out-of-line call goes through memory.
#define GRAFT_INLINE static inline __attribute__((always_inline))

GRAFT_INLINE float bf2f(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
GRAFT_INLINE uint16_t f2bf(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline float toF(float x) { return x; }
static inline float toF(uint16_t x) { return bf2f(x); }
static inline float toF(int32_t x) { return static_cast<float>(x); }
static inline void fromF(float v, float* p) { *p = v; }
static inline void fromF(float v, uint16_t* p) { *p = f2bf(v); }
static inline void fromF(float v, int32_t* p) { *p = static_cast<int32_t>(v); }  // truncates toward zero

GRAFT_INLINE vf splat(float x) { return vf{} + x; }
GRAFT_INLINE vf ld(const float* p) {
  vf v;
  memcpy(&v, p, sizeof v);
  return v;
}
GRAFT_INLINE vf ld(const uint16_t* p) {
  vh h;
  memcpy(&h, p, sizeof h);
  vi w = __builtin_convertvector(h, vi) << 16;
  return (vf)w;
}
GRAFT_INLINE vf ld(const int32_t* p) {
  vi v;
  memcpy(&v, p, sizeof v);
  return __builtin_convertvector(v, vf);
}
GRAFT_INLINE void st(float* p, vf v) { memcpy(p, &v, sizeof v); }
GRAFT_INLINE void st(uint16_t* p, vf v) {
  vu u = (vu)v;
  vu r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  vu nan = (u >> 16) | 0x40u;
  r = ((u & 0x7fffffffu) > 0x7f800000u) ? nan : r;
  vh h = __builtin_convertvector(r, vh);
  memcpy(p, &h, sizeof h);
}
GRAFT_INLINE void st(int32_t* p, vf v) {
  vi i = __builtin_convertvector(v, vi);
  memcpy(p, &i, sizeof i);
}

// Loads up to 16 elements starting at p with a stride (0 broadcasts); missing lanes read 0. The slow
// paths are out of line and pass vectors through float buffers (no vector-typed ABI).
template <class T>
__attribute__((noinline)) static void gatherSlow(const T* p, int64_t stride, int64_t cnt, float* buf) {
  for (int64_t j = 0; j < W; j++) buf[j] = j < cnt ? toF(p[j * stride]) : 0.0f;
}
template <class T>
GRAFT_INLINE vf ldS(const T* p, int64_t stride, int64_t cnt) {
  if (__builtin_expect(stride == 1 && cnt == W, 1)) return ld(p);
  if (stride == 0) return splat(toF(*p));
  float buf[W];
  gatherSlow(p, stride, cnt, buf);
  return ld(buf);
}
template <class T>
__attribute__((noinline)) static void scatterSlow(T* p, int64_t stride, int64_t cnt, const float* buf) {
  for (int64_t j = 0; j < cnt; j++) fromF(buf[j], p + j * stride);
}
template <class T>
GRAFT_INLINE void stS(T* p, int64_t stride, int64_t cnt, vf v) {
  if (__builtin_expect(stride == 1 && cnt == W, 1)) return st(p, v);
  float buf[W];
  st(buf, v);
  scatterSlow(p, stride, cnt, buf);
}

GRAFT_INLINE float hsum(vf v) {
  float buf[W];
  st(buf, v);
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int j = 0; j < W; j += 4) {  // W is a multiple of 4
    s0 += buf[j];
    s1 += buf[j + 1];
    s2 += buf[j + 2];
    s3 += buf[j + 3];
  }
  return (s0 + s1) + (s2 + s3);
}
GRAFT_INLINE float hmax(vf v) {
  float buf[W];
  st(buf, v);
  float m = buf[0];
  for (int j = 1; j < W; j++) m = buf[j] > m ? buf[j] : m;
  return m;
}
GRAFT_INLINE vf vmax(vf a, vf b) { return a > b ? a : b; }
GRAFT_INLINE vf vmin(vf a, vf b) { return a < b ? a : b; }
GRAFT_INLINE vf vabs(vf a) { return (vf)((vu)a & 0x7fffffffu); }
GRAFT_INLINE vf vmask(vi m) { return (vf)(m & (vi)splat(1.0f)); }  // lane mask -> 1.0 / 0.0
GRAFT_INLINE vf vsqrt(vf a) {
  for (int j = 0; j < W; j++) a[j] = __builtin_sqrtf(a[j]);
  return a;
}
template <class F>
GRAFT_INLINE vf lanes(vf a, F f) {
  float buf[W];
  st(buf, a);
  for (int j = 0; j < W; j++) buf[j] = f(buf[j]);
  return ld(buf);
}

// exp with ~1 ulp error (Cephes expf polynomial); underflows to 0 below -87.3, inf above 88.72.
GRAFT_INLINE vf vexp(vf x) {
  const vf hi = splat(88.7228391f), lo = splat(-87.3365447f);
  vf xc = vmin(vmax(x, lo), hi);
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer in the low bits
  vf kf = xc * 1.44269504088896341f + magic;
  vi n = (vi)kf - (vi)splat(magic);
  kf -= magic;
  vf r = xc - kf * 0.693359375f;
  r = r - kf * -2.12194440e-4f;
  vf p = splat(1.9875691500E-4f);
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  p = p * (r * r) + r + 1.0f;
  vi n1 = n >> 1, n2 = n - n1;
  vf s1 = (vf)((n1 + 127) << 23), s2 = (vf)((n2 + 127) << 23);
  vf res = p * s1 * s2;
  res = x < lo ? splat(0.0f) : res;
  res = x > hi ? splat(__builtin_inff()) : res;
  return res;
}
GRAFT_INLINE vf vsigmoid(vf x) { return 1.0f / (1.0f + vexp(-x)); }
GRAFT_INLINE vf vtanh(vf x) {
  vf ax = vabs(x);
  vf z = x * x;
  vf p = splat(-5.70498872745E-3f);
  p = p * z + 2.06390887954E-2f;
  p = p * z - 5.37397155531E-2f;
  p = p * z + 1.33314422036E-1f;
  p = p * z - 3.33332819422E-1f;
  vf small = x + x * z * p;
  vf big = 1.0f - 2.0f / (vexp(ax + ax) + 1.0f);
  big = (vf)(((vu)big) | ((vu)x & 0x80000000u));
  return ax < 0.625f ? small : big;
}
// erfc(z) with < 1.2e-7 fractional error (Numerical Recipes erfcc).
GRAFT_INLINE vf verfc(vf z) {
  vf az = vabs(z);
  vf t = 1.0f / (1.0f + 0.5f * az);
  vf p = splat(0.17087277f);
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  vf ans = t * vexp(-az * az + p);
  return z >= 0.0f ? ans : 2.0f - ans;
}
constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kGeluA = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;
