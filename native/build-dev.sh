#!/usr/bin/env bash
# Development build of a partial add-on: native/build-dev.sh OUT.node file.cpp... (addon, cpu,
# threadpool and napi_util are always included). Load it with GRAFT_NATIVE_PATH=OUT.node.
set -euo pipefail
out=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
g++ -std=c++17 -O3 -fno-math-errno -fno-trapping-math -pthread -fPIC -shared -DNAPI_VERSION=8 \
  -I/usr/include/node -o "$out" \
  "$here/addon.cpp" "$here/cpu.cpp" "$here/threadpool.cpp" "$here/napi_util.cpp" "$@"
