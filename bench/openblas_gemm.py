"""OpenBLAS baseline for bench/gemm.ts: float32 GEMM throughput of the system's OpenBLAS (cblas_sgemm).

Loads libopenblas through ctypes (Debian: apt install libopenblas0-pthread; nothing here is downloaded),
sets its thread count to graft's, and times C = A B (or A B^T) on row-major float32 matrices: the best of
several calls after a warmup, as bench/gemm.ts times graft.

  /usr/bin/python3 bench/openblas_gemm.py --threads 2 --json '[[512, 896, 4864, false], ...]'

Prints one JSON object: {"library": path, "rows": [{"m", "k", "n", "transB", "gflops"}, ...]}, or exits
with status 2 and a message when no OpenBLAS (or numpy) is found.
"""
import argparse
import ctypes
import ctypes.util
import json
import os
import sys
import time

CANDIDATES = [
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
]

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112


def find_openblas():
    for path in CANDIDATES:
        if os.path.exists(path):
            return path
    return ctypes.util.find_library("openblas")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--json", required=True, help="[[m, k, n, transB], ...]")
    ap.add_argument("--repeats", type=int, default=8)
    args = ap.parse_args()
    try:
        import numpy as np
    except ImportError:
        print("numpy is missing (Debian: apt install python3-numpy)", file=sys.stderr)
        sys.exit(2)
    path = find_openblas()
    if not path:
        print("no libopenblas found (Debian: apt install libopenblas0-pthread)", file=sys.stderr)
        sys.exit(2)
    lib = ctypes.CDLL(path)
    lib.openblas_set_num_threads(ctypes.c_int(args.threads))
    sgemm = lib.cblas_sgemm
    f32p = ctypes.POINTER(ctypes.c_float)
    sgemm.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_float, f32p, ctypes.c_int, f32p, ctypes.c_int, ctypes.c_float, f32p, ctypes.c_int]
    sgemm.restype = None
    rng = np.random.default_rng(1)
    rows = []
    for m, k, n, trans_b in json.loads(args.json):
        a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
        b = rng.uniform(-1, 1, (n, k) if trans_b else (k, n)).astype(np.float32)
        c = np.zeros((m, n), np.float32)
        pa, pb, pc = (x.ctypes.data_as(f32p) for x in (a, b, c))
        ldb = k if trans_b else n

        def run():
            sgemm(ROW_MAJOR, NO_TRANS, TRANS if trans_b else NO_TRANS, m, n, k, 1.0, pa, k, pb, ldb, 0.0, pc, n)

        run()
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t0)
        rows.append({"m": m, "k": k, "n": n, "transB": bool(trans_b), "gflops": 2.0 * m * n * k / best / 1e9})
    print(json.dumps({"library": path, "rows": rows}))


if __name__ == "__main__":
    main()
