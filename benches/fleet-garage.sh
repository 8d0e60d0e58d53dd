#!/usr/bin/env bash
# `firesafe fleet status` over a 3-node Garage cluster: time and peak memory for 10, 30 and 100
# schools.
#
#   benches/fleet-garage.sh                      # 10 30 100, median of 3 runs each
#   BENCH_FLEET_SIZES="10 30" BENCH_RUNS=5 benches/fleet-garage.sh
#
# Starts its own cluster (tests/scripts/garage-start.sh, 3 nodes, replication factor 3) and
# stops it at the end. scripts/garage-schools.sh gives 30 schools a bucket and a key each, and
# the trust its read-only key. Each simulated school then runs `firesafe run nightly --init` once
# (a few small files, one offsite target: its bucket, under a prefix of its own), which writes its
# signed beacon there. Up to 30 schools each have a bucket of their own; beyond 30 the buckets
# are shared, school i using bucket i mod 30 under the prefix firesafe-i. `fleet status` reads,
# per school, the beacon and the snapshots/ listing, through node 0's S3 endpoint.
set -euo pipefail
export LC_ALL=C
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${BENCH_DIR:-/tmp/firesafe-fleet-garage-bench}"
SIZES="${BENCH_FLEET_SIZES:-10 30 100}"
RUNS="${BENCH_RUNS:-3}"
BUCKETS=30
if [[ -n "${FIRESAFE_BIN:-}" ]]; then
    FS="$FIRESAFE_BIN"
else
    (cd "$ROOT" && cargo build --release --quiet)
    FS="$ROOT/target/release/firesafe"
fi
command -v /usr/bin/time >/dev/null || { echo "fleet-garage.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
[[ ! -d "$DIR/garage" ]] || "$ROOT/tests/scripts/garage-stop.sh" "$DIR/garage" --purge
rm -rf "$DIR" && mkdir -p "$DIR"
trap '"$ROOT/tests/scripts/garage-stop.sh" "$DIR/garage" --purge' EXIT
"$ROOT/tests/scripts/garage-start.sh" "$DIR/garage" --nodes 3 >"$DIR/garage.env"

# The buckets and keys: the first school alone (it makes the trust's key), the rest 5 batches
# at once.
schools() { for i in $(seq "$1" "$2"); do echo "Bench School $i"; done; }
provision() { "$ROOT/scripts/garage-schools.sh" --cluster "$DIR/garage" --out "$DIR/keys" --schools - >/dev/null 2>>"$DIR/provision.log"; }
schools 1 1 | provision
pids=()
for start in 2 8 14 20 26; do
    end=$((start + 5)); [[ $end -le $BUCKETS ]] || end=$BUCKETS
    schools "$start" "$end" | provision & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

max="$(echo "$SIZES" | tr ' ' '\n' | sort -n | tail -1)"
mkdir -p "$DIR/school/targets" "$DIR/school/schedules"
"$ROOT/tests/scripts/demo-share.sh" "$DIR/school/shares" >/dev/null
recipient="$("$FS" fleet keygen --out "$DIR/trust.key" 2>/dev/null)"
cat >"$DIR/school/schedules/nightly.toml" <<'EOF'
cron = "0 2 * * *"
timezone = "Europe/London"
targets = ["offsite"]
key_file = "school.key"
[[sources]]
name = "admin"
path = "shares/admin"
[policy]
min_copies = 1
min_media = 1
min_offsite = 1
max_age_hours = 26
live_data_counts = false
EOF
export FIRESAFE_STATE_DIR="$DIR/state"
for i in $(seq 1 "$max"); do
    b=$(( (i - 1) % BUCKETS + 1 ))
    printf 'school = "Bench School %s"\ntrust_recipient = "%s"\n' "$i" "$recipient" >"$DIR/school/site.toml"
    printf 'kind = "s3"\nlocation = "offsite"\nmedium = "object-storage"\nbucket = "school-bench-school-%s"\nprefix = "firesafe-%s"\n' \
        "$b" "$i" >"$DIR/school/targets/offsite.toml"
    (set -a; . "$DIR/keys/bench-school-$b.env"; set +a
     "$FS" run nightly --init --config-dir "$DIR/school" >>"$DIR/runs.log" 2>&1) ||
        { echo "fleet-garage.sh: the run of Bench School $i failed; see $DIR/runs.log" >&2; exit 1; }
done
public="$("$FS" beacon key --config-dir "$DIR/school" 2>/dev/null)"

set -a; . "$DIR/keys/trust-read.env"; set +a
school_entry() {
    printf '\n[[school]]\nname = "Bench School %s"\npublic_key = "%s"\n[school.targets.offsite]\nkind = "s3"\nbucket = "school-bench-school-%s"\nprefix = "firesafe-%s"\n' \
        "$1" "$public" "$(( ($1 - 1) % BUCKETS + 1 ))" "$1"
}
. "$ROOT/benches/fleet-measure.sh"
measure_fleet "$FS" "$DIR" "$RUNS" "$SIZES" school_entry
