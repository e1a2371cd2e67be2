// Runtime CPU feature detection for kernel dispatch. GRAFT_ISA=generic|avx2|avx512|avx512bf16 caps it.
#pragma once

namespace graft {

enum class Isa { Generic = 0, Avx2 = 1, Avx512 = 2, Avx512Bf16 = 3 };

Isa detectIsa();       // what the CPU (and OS) support, capped by GRAFT_ISA
const char* isaName(Isa isa);

}  // namespace graft
