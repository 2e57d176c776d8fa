#!/usr/bin/env bash
# Head decode: roundtrip-proto against httparse, criterion medians, in
# interleaved rounds (each round runs every bench once), pinned to CPU 0.
# Prints each round's medians and the median of the per-round ratios
# (httparse time / roundtrip time: > 1.0 means roundtrip is faster), for
# names and values read as slices, and for each value taken as a `Bytes`
# (roundtrip with shared heads; httparse with the head split off and sliced).
#
#   bash bench/proto.sh [ROUNDS]      (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
exec 9>/tmp/roundtrip-bench.lock
flock 9
cargo bench -p roundtrip-proto --bench decode --no-run -q 2>/dev/null
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
est() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['median']['point_estimate'])" \
  "target/criterion/head_$1/$2/new/estimates.json"; }
declare -A ratios
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$rounds"); do
  taskset -c 0 cargo bench -q -p roundtrip-proto --bench decode -- '^head/' \
    --warm-up-time 1 --measurement-time 3 --noplot >/dev/null 2>&1
  line="round $r:"
  for h in small cdn; do
    ours=$(est "$h" roundtrip); shared=$(est "$h" roundtrip-shared)
    theirs=$(est "$h" httparse); theirs_shared=$(est "$h" httparse-shared)
    r1=$(python3 -c "print(f'{$theirs/$ours:.3f}')"); r2=$(python3 -c "print(f'{$theirs_shared/$shared:.3f}')")
    ratios[$h]+="$r1 "; ratios[${h}s]+="$r2 "
    line+=$(printf ' %s: roundtrip %.1f / httparse %.1f ns (%s); Bytes per value: roundtrip %.1f / httparse %.1f ns (%s);' \
      "$h" "$ours" "$theirs" "$r1" "$shared" "$theirs_shared" "$r2")
  done
  echo "$line"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
for h in small cdn; do
  echo "median ratio $h: slices $(tr ' ' '\n' <<<"${ratios[$h]}" | grep . | median)," \
    "a Bytes per value $(tr ' ' '\n' <<<"${ratios[${h}s]}" | grep . | median)"
done
