#!/usr/bin/env bash
# `status` on a schedule whose two local copies hold about 2,000 packs each: how long it takes
# to count a copy only when every pack and index object its newest snapshots need is listed
# there, and its peak memory. Medians of BENCH_RUNS runs with the page cache warm; with
# BENCH_COLD=1 (root only: it empties the whole machine's page cache) also cold.
#
#   FIRESAFE_BIN=target/release/firesafe benches/status-packs.sh
#
# BENCH_PACKS (default 2200) files of 1 MiB of random data are backed up with 1 MiB packs, so
# the repository holds a little fewer data packs than files (1,988 with the default here). BENCH_DIR (default: a new temporary
# directory) is kept for a second look; remove it afterwards.
set -euo pipefail

BIN=$(realpath "${FIRESAFE_BIN:-target/release/firesafe}")
PACKS=${BENCH_PACKS:-2200}
RUNS=${BENCH_RUNS:-5}
DIR=${BENCH_DIR:-$(mktemp -d /tmp/firesafe-status-bench.XXXXXX)}
mkdir -p "$DIR/targets" "$DIR/schedules" "$DIR/share"
cd "$DIR"

if [ ! -e share/done ]; then
  for i in $(seq 1 "$PACKS"); do
    head -c 1048576 /dev/urandom > "share/f$i"
  done
  touch share/done
fi

for t in nas offsite; do
  cat > "targets/$t.toml" <<EOF
kind = "path"
location = "$([ $t = nas ] && echo onsite || echo offsite)"
medium = "$([ $t = nas ] && echo nas || echo removable-disk)"
path = "$DIR/$t"
require_mount = false
EOF
done
cat > schedules/bench.toml <<EOF
cron = "0 2 * * *"
timezone = "Europe/London"
targets = ["nas", "offsite"]
key_file = "$DIR/key"
[[sources]]
name = "share"
path = "$DIR/share"
EOF

export FIRESAFE_STATE_DIR="$DIR/state"
if [ ! -e nas/config ]; then
  "$BIN" --repo "$DIR/nas" init --pack-size 1 --generate-key "$DIR/key" > /dev/null
fi
if [ -z "$(ls nas/snapshots 2> /dev/null)" ]; then
  "$BIN" run bench --init --config-dir "$DIR" > /dev/null
fi
packs=$(find nas/data -type f | wc -l)
indexes=$(find nas/index -type f | wc -l)

# One status run: wall seconds and peak memory (MiB).
one() {
  /usr/bin/time -f '%e %M' -o "$DIR/time.out" "$BIN" status bench --config-dir "$DIR" > "$DIR/status.out" || true
  read -r secs kib < <(tail -1 "$DIR/time.out")
  echo "$secs $((kib / 1024))"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

measure() {
  local label=$1 cold=$2 times=() mems=()
  for _ in $(seq 1 "$RUNS"); do
    if [ "$cold" = 1 ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi
    read -r s m < <(one)
    times+=("$s"); mems+=("$m")
  done
  printf '%-6s median %s s (runs: %s), peak memory median %s MiB\n' "$label" \
    "$(printf '%s\n' "${times[@]}" | median)" "${times[*]}" \
    "$(printf '%s\n' "${mems[@]}" | median)"
}

echo "status of schedule bench: 2 copies, each $packs data packs and $indexes index objects ($DIR)"
one > /dev/null
grep -q "share: " status.out || { cat status.out; exit 1; }
measure warm 0
if [ "${BENCH_COLD:-0}" = 1 ]; then measure cold 1; fi
# The same with one pack missing from the NAS: the copy is no longer counted.
victim=$(find nas/data -type f -print -quit)
mv "$victim" "$DIR/aside"
measure gone 0
grep -q "NOT COUNTED" status.out || { echo "the missing pack was not noticed"; cat status.out; exit 1; }
mv "$DIR/aside" "$victim"
