#!/usr/bin/env bash
# `firesafe fleet status` over many schools: time and peak memory for 10, 30 and 100 schools.
#
#   benches/fleet.sh                      # 10 30 100, median of 3 runs each
#   BENCH_FLEET_SIZES="10 30" BENCH_RUNS=5 benches/fleet.sh
#
# One school (the shipped example with a site.toml naming the trust) runs once; its offsite copy
# is then copied once per simulated school, and `firesafe beacon write` writes each copy its own
# signed beacon under the school's own name, so that every school `fleet status` reads has a
# real, signed, fresh beacon and real snapshot objects to confirm. The copies are local folders:
# this measures firesafe's own work (decrypting, verifying, listing), not a network.
set -euo pipefail
export LC_ALL=C
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${BENCH_DIR:-/tmp/firesafe-fleet-bench}"
SIZES="${BENCH_FLEET_SIZES:-10 30 100}"
RUNS="${BENCH_RUNS:-3}"
if [[ -n "${FIRESAFE_BIN:-}" ]]; then
    FS="$FIRESAFE_BIN"
else
    (cd "$ROOT" && cargo build --release --quiet)
    FS="$ROOT/target/release/firesafe"
fi
command -v /usr/bin/time >/dev/null || { echo "fleet.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
rm -rf "$DIR" && mkdir -p "$DIR/school"
cp -r "$ROOT/targets" "$ROOT/schedules" "$DIR/school/"
"$ROOT/tests/scripts/demo-share.sh" "$DIR/school/demo/shares" >/dev/null
recipient="$("$FS" fleet keygen --out "$DIR/trust.key" 2>/dev/null)"
printf 'school = "School 0"\ntrust_recipient = "%s"\n' "$recipient" >"$DIR/school/site.toml"
export FIRESAFE_STATE_DIR="$DIR/state"
"$FS" run nightly --init --config-dir "$DIR/school" >/dev/null 2>&1
public="$("$FS" beacon key --config-dir "$DIR/school" 2>/dev/null)"
max="$(echo "$SIZES" | tr ' ' '\n' | sort -n | tail -1)"
offsite_toml="$(cat "$DIR/school/targets/offsite.toml")"
for i in $(seq 1 "$max"); do
    cp -r "$DIR/school/demo/offsite" "$DIR/offsite-$i"
    sed "s|^path = .*|path = \"$DIR/offsite-$i\"|" <<<"$offsite_toml" >"$DIR/school/targets/offsite.toml"
    printf 'school = "School %s"\ntrust_recipient = "%s"\n' "$i" "$recipient" >"$DIR/school/site.toml"
    "$FS" beacon write nightly --config-dir "$DIR/school" >/dev/null 2>&1 || true
done
school_entry() {
    printf '\n[[school]]\nname = "School %s"\npublic_key = "%s"\n[school.targets.offsite]\nkind = "path"\npath = "%s/offsite-%s"\n' \
        "$1" "$public" "$DIR" "$1"
}
. "$ROOT/benches/fleet-measure.sh"
measure_fleet "$FS" "$DIR" "$RUNS" "$SIZES" school_entry
