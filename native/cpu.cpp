#include "cpu.h"

#include <cpuid.h>
#include <cstdlib>
#include <cstring>

namespace graft {
namespace {

unsigned long long xgetbv0() {
  unsigned int eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

Isa probe() {
  unsigned int a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::Generic;
  bool osxsave = c & (1u << 27);
  bool fma = c & (1u << 12);
  if (!osxsave) return Isa::Generic;
  unsigned long long xcr0 = xgetbv0();
  bool ymm = (xcr0 & 0x6) == 0x6;
  bool zmm = (xcr0 & 0xe6) == 0xe6;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return Isa::Generic;
  bool avx2 = b & (1u << 5);
  bool avx512f = b & (1u << 16);
  bool avx512bw = b & (1u << 30);
  bool avx512vl = b & (1u << 31);
  unsigned int a1 = 0, b1, c1, d1;
  __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
  bool bf16 = a1 & (1u << 5);
  if (zmm && avx512f && avx512bw && avx512vl && fma) return bf16 ? Isa::Avx512Bf16 : Isa::Avx512;
  if (ymm && avx2 && fma) return Isa::Avx2;
  return Isa::Generic;
}

}  // namespace

Isa detectIsa() {
  static Isa isa = [] {
    Isa found = probe();
    if (const char* env = std::getenv("GRAFT_ISA")) {
      Isa cap = found;
      if (!std::strcmp(env, "generic")) cap = Isa::Generic;
      else if (!std::strcmp(env, "avx2")) cap = Isa::Avx2;
      else if (!std::strcmp(env, "avx512")) cap = Isa::Avx512;
      else if (!std::strcmp(env, "avx512bf16")) cap = Isa::Avx512Bf16;
      if (static_cast<int>(cap) < static_cast<int>(found)) found = cap;
    }
    return found;
  }();
  return isa;
}

const char* isaName(Isa isa) {
  switch (isa) {
    case Isa::Avx512Bf16: return "avx512bf16";
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "generic";
  }
}

}  // namespace graft
