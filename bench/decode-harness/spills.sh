#!/usr/bin/env bash
# On a GPU host: where the persistent decode kernel spills. Builds llama.cu to a cubin with line info (extra nvcc flags
# in SPILLS_NVCC) and lists each local-memory store and load (STL / LDL) of the named kernels with the source line it
# comes from (innermost, then where that was inlined), counts per line first, e.g.
#   bash bench/decode-harness/spills.sh decode_b1_hd128
set -eo pipefail
cd "$(dirname "$0")/../.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
D=$(dirname "$NVCC")
B=${HARNESS_BUILD:-/tmp/decode-harness}
mkdir -p "$B"
"$NVCC" -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -lineinfo -cubin ${SPILLS_NVCC:-} -o "$B/llama.cubin" kernels/engine/llama.cu
"$D/nvdisasm" -g -gi -c "$B/llama.cubin" > "$B/llama.sass" 2>/dev/null || "$D/nvdisasm" -g -c "$B/llama.cubin" > "$B/llama.sass"
for k in "$@"; do
  echo "=== $k"
  awk -v k="$k" '
    /^\.text\./ { inf = ($0 ~ ("^\\.text\\." k ":")) }
    inf && /\/\/## File/ { loc = $0; gsub(/"[^"]*\//, "", loc); gsub(/\/\/## File /, "", loc); gsub(/"/, "", loc); gsub(/[ \t]+/, " ", loc);
                            ln = loc; sub(/^[^,]*, line /, "", ln); sub(/ .*/, "", ln) }
    inf && /(STL|LDL)/ { n++; ins = $0; sub(/^[ \t]*\/\*[0-9a-f]*\*\/[ \t]*/, "", ins); sub(/;.*/, "", ins); c[ln]++; d[ln] = loc; l[n] = "  " ins "   <- " loc }
    END {
      printf "  %d local-memory instructions; per innermost source line:\n", n
      for (k in c) printf "  %4d  %s\n", c[k], d[k] | "sort -rn"
      close("sort -rn")
      print "  in order:"
      for (i = 1; i <= n; i++) print l[i]
    }' "$B/llama.sass" | head -${SPILLS_LINES:-400}
done
