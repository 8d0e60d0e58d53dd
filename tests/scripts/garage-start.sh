#!/usr/bin/env bash
# garage-start.sh: a Garage cluster (a distributed S3-compatible object store) on 127.0.0.1 for
# the tests, standing in for offsite storage spread over several schools.
#
#   eval "$(garage-start.sh DIR [--nodes N] [--bucket NAME] [--port-base P])"
#       Starts N nodes (default 3) with replication factor min(N, 3), connects them, applies the
#       layout, creates the bucket (default firesafe-test) and a key allowed on it, and prints
#       `export FIRESAFE_TEST_GARAGE_*=...` lines (endpoint, bucket, key, region, each node's
#       endpoint and PID, DIR). Node i listens on S3 = P+10*i, RPC = P+10*i+1, admin = P+10*i+3
#       (P defaults to 3900; a busy range moves P up by 100). Stop with garage-stop.sh DIR.
#   garage-start.sh DIR --node I
#       Starts node I of the cluster in DIR again (after garage-stop.sh DIR --node I), with its
#       configuration, data and ports, and waits until it is connected to every running node.
#   garage-start.sh --install-only
#       Builds garage if it is not cached yet, and nothing else.
#
# garage comes only from crates.io, so it is built once with `cargo install` (pinned to
# GARAGE_VERSION, default 2.5.0) into FIRESAFE_GARAGE_ROOT (default ~/.cache/firesafe-garage),
# and reused from there; GARAGE_BIN names a binary to use instead. The build is the cheapest that
# serves the tests: no K2V, metrics or SQLite (LMDB holds the metadata), and optimisation level 0
# in the release profile (no debug assertions), which takes half the CPU time of level 1 and runs
# the tests just as fast, since they move only a few megabytes.
# Concurrent callers wait for one build. Only `export` lines go to standard output.
set -euo pipefail

GARAGE_VERSION="${GARAGE_VERSION:-2.5.0}"
ROOT="${FIRESAFE_GARAGE_ROOT:-$HOME/.cache/firesafe-garage}"
NODES=3
BUCKET=firesafe-test
PORT_BASE=3900
DIR=""
NODE=""
INSTALL_ONLY=false
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) NODES="$2"; shift 2 ;;
    --bucket) BUCKET="$2"; shift 2 ;;
    --port-base) PORT_BASE="$2"; shift 2 ;;
    --node) NODE="$2"; shift 2 ;;
    --install-only) INSTALL_ONLY=true; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) [ -z "$DIR" ] || { echo "unexpected argument $1" >&2; exit 2; }; DIR="$1"; shift ;;
  esac
done
log() { echo "[garage-start] $*" >&2; }

# ---------- the binary ----------
cached() { # the cached binary exists and is GARAGE_VERSION ("garage cargo:2.5.0 [features: ...]")
  [ -x "$ROOT/bin/garage" ] && "$ROOT/bin/garage" --version 2>/dev/null | grep -qF ":$GARAGE_VERSION "
}
install_garage() {
  local bin="$ROOT/bin/garage"
  if cached; then echo "$bin"; return; fi
  mkdir -p "$ROOT"
  exec 9>"$ROOT/.install.lock"
  flock 9
  if ! cached; then
    log "building garage $GARAGE_VERSION from crates.io into $ROOT (once; about 5 minutes of CPU time)"
    local t0
    t0=$(date +%s)
    BUILD_DIR="$(mktemp -d "${TMPDIR:-/tmp}/firesafe-garage-build.XXXXXX")"
    trap 'rm -rf "$BUILD_DIR"' EXIT
    # Its own target directory, so it never waits on the lock of the project's build.
    if ! CARGO_TARGET_DIR="$BUILD_DIR" \
        CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_LTO=false \
        CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_DEBUG=false \
        nice -n 10 cargo install garage --version "$GARAGE_VERSION" --locked --root "$ROOT" \
          --no-default-features --features bundled-libs,lmdb >"$ROOT/install.log" 2>&1; then
      tail -30 "$ROOT/install.log" >&2
      log "building garage failed; the whole log is $ROOT/install.log"
      exit 1
    fi
    log "built garage in $(( $(date +%s) - t0 )) s"
  fi
  flock -u 9
  echo "$bin"
}

if [ -n "$NODE" ] && [ -f "$DIR/garage-bin" ]; then GARAGE="$(cat "$DIR/garage-bin")"   # the cluster's own
elif [ -n "${GARAGE_BIN:-}" ]; then GARAGE="$GARAGE_BIN"
else GARAGE="$(install_garage)"; fi
$INSTALL_ONLY && exit 0
[ -n "$DIR" ] || { echo "usage: $0 DIR [--nodes N] [--bucket NAME] [--port-base P] | DIR --node I | --install-only" >&2; exit 2; }
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"

running() { # a live process, not a zombie left for a parent that never reaps it
  [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
start_node() { # start_node I: runs node I from DIR/nodeI/garage.toml, records its PID
  local nd="$DIR/node$1"
  RUST_LOG="${RUST_LOG:-garage=warn}" setsid "$GARAGE" -c "$nd/garage.toml" server \
    >>"$nd/garage.log" 2>&1 </dev/null &
  echo $! >"$nd/garage.pid"
}
wait_for() { # wait_for SECONDS WHAT COMMAND...
  local end=$(( $(date +%s) + $1 )) what="$2" pf
  shift 2
  until "$@" >/dev/null 2>&1; do
    for pf in "$DIR"/node*/garage.pid; do
      [ -f "$pf" ] || continue
      running "$(cat "$pf")" || { log "garage $(dirname "$pf") died"; tail -20 "$(dirname "$pf")/garage.log" >&2; exit 1; }
    done
    [ "$(date +%s)" -lt "$end" ] || { log "timed out waiting for $what"; exit 1; }
    sleep 0.3
  done
}
sees() { # sees I N: node I is connected to N nodes (itself included) and has quorum everywhere
  local token view
  token="$(sed -n 's/^admin_token = "\(.*\)"$/\1/p' "$DIR/node$1/garage.toml")"
  view="$(curl -fsS -H "Authorization: Bearer $token" "$(cat "$DIR/node$1/admin-url")/v2/GetClusterHealth")" || return 1
  [ "$(echo "$view" | sed -n 's/.*"connectedNodes": *\([0-9]*\).*/\1/p')" -ge "$2" ] &&
    ! echo "$view" | grep -q '"status": *"unavailable"'
}

# ---------- restart one node ----------
if [ -n "$NODE" ]; then
  nd="$DIR/node$NODE"
  [ -f "$nd/garage.toml" ] || { log "no node $NODE in $DIR"; exit 2; }
  if [ -f "$nd/garage.pid" ] && running "$(cat "$nd/garage.pid")"; then
    log "node $NODE is already running (pid $(cat "$nd/garage.pid"))"; exit 0
  fi
  start_node "$NODE"
  wait_for 60 "node $NODE" "$GARAGE" -c "$nd/garage.toml" status
  # Connect it to the running nodes now: left to themselves they can take half a minute to retry.
  up=0
  for other in "$DIR"/node*; do
    { [ -f "$other/garage.pid" ] && running "$(cat "$other/garage.pid")"; } || continue
    up=$((up + 1))
    [ "$other" = "$nd" ] && continue
    "$GARAGE" -c "$nd/garage.toml" node connect "$("$GARAGE" -c "$other/garage.toml" node id -q)" \
      >>"$DIR/setup.log" 2>&1 || true
  done
  wait_for 120 "node $NODE to see the $up running nodes" sees "$NODE" "$up"
  log "node $NODE running again (pid $(cat "$nd/garage.pid"))"
  exit 0
fi

for pf in "$DIR"/node*/garage.pid; do
  [ -f "$pf" ] || continue
  if running "$(cat "$pf")"; then log "a garage started in $DIR is still running; garage-stop.sh $DIR first"; exit 1; fi
done

# ---------- free loopback ports ----------
port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
ports_free() {
  local i off
  for ((i = 0; i < NODES; i++)); do
    for off in 0 1 3; do port_busy $(( $1 + 10 * i + off )) && return 1; done
  done
  return 0
}
tries=0
until ports_free "$PORT_BASE"; do
  tries=$((tries + 1)); [ $tries -lt 20 ] || { log "no free port range"; exit 1; }
  PORT_BASE=$((PORT_BASE + 100))
done
RF=$(( NODES < 3 ? NODES : 3 ))
echo "$GARAGE" >"$DIR/garage-bin"
rand_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
RPC_SECRET="$(rand_hex 32)"
ADMIN_TOKEN="$(rand_hex 16)"

# ---------- configure and start the nodes ----------
for ((i = 0; i < NODES; i++)); do
  nd="$DIR/node$i"
  mkdir -p "$nd/meta" "$nd/data"
  s3=$((PORT_BASE + 10 * i))
  umask 077
  cat >"$nd/garage.toml" <<EOF
metadata_dir = "$nd/meta"
data_dir = "$nd/data"
db_engine = "lmdb"
replication_factor = $RF
consistency_mode = "consistent"
rpc_bind_addr = "127.0.0.1:$((s3 + 1))"
rpc_public_addr = "127.0.0.1:$((s3 + 1))"
rpc_secret = "$RPC_SECRET"
bootstrap_peers = []

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$((s3 + 3))"
admin_token = "$ADMIN_TOKEN"
EOF
  umask 022
  echo "http://127.0.0.1:$((s3 + 3))" >"$nd/admin-url"
  start_node "$i"
  log "node$i pid $(cat "$nd/garage.pid") s3=127.0.0.1:$s3"
done
G() { "$GARAGE" -c "$DIR/node0/garage.toml" "$@" >>"$DIR/setup.log" 2>&1; }
stop_on_failure() {
  local rc=$?
  [ $rc -eq 0 ] && return
  tail -20 "$DIR/setup.log" >&2 2>/dev/null
  log "failed; stopping the nodes"
  "$(dirname "$0")/garage-stop.sh" "$DIR" >&2
}
trap stop_on_failure EXIT

# ---------- layout: one zone per node, so every node holds a copy ----------
IDS=()
for ((i = 0; i < NODES; i++)); do
  wait_for 60 "node$i" "$GARAGE" -c "$DIR/node$i/garage.toml" status
  IDS+=("$("$GARAGE" -c "$DIR/node$i/garage.toml" node id -q 2>/dev/null)")
done
for ((i = 1; i < NODES; i++)); do
  wait_for 30 "node$i to connect" G node connect "${IDS[$i]}"
done
for ((i = 0; i < NODES; i++)); do
  G layout assign -z "school$((i + 1))" -c 1G "${IDS[$i]%%@*}"
done
G layout apply --version 1
wait_for 60 "every node to be connected" sees 0 "$NODES"

# ---------- key and bucket ----------
KEY_ID="GK$(rand_hex 12)"
SECRET="$(rand_hex 32)"
G key import --yes -n firesafe-test "$KEY_ID" "$SECRET"
G bucket create "$BUCKET"
G bucket allow --read --write --owner "$BUCKET" --key "$KEY_ID"
ENDPOINT="http://127.0.0.1:$PORT_BASE"
s3_ok() {
  [ "$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:garage:s3" --user "$KEY_ID:$SECRET" \
      -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
      "$ENDPOINT/$BUCKET?list-type=2&max-keys=1")" = 200 ]
}
wait_for 30 "a signed S3 request" s3_ok

ENDPOINTS=() PIDS=()
for ((i = 0; i < NODES; i++)); do
  ENDPOINTS+=("http://127.0.0.1:$((PORT_BASE + 10 * i))")
  PIDS+=("$(cat "$DIR/node$i/garage.pid")")
done
log "ready: $NODES nodes, replication factor $RF, bucket $BUCKET, endpoints ${ENDPOINTS[*]}, pids ${PIDS[*]}"
cat <<EOF
export FIRESAFE_TEST_GARAGE_DIR=$DIR
export FIRESAFE_TEST_GARAGE_ENDPOINT=$ENDPOINT
export FIRESAFE_TEST_GARAGE_ENDPOINTS="${ENDPOINTS[*]}"
export FIRESAFE_TEST_GARAGE_PIDS="${PIDS[*]}"
export FIRESAFE_TEST_GARAGE_BUCKET=$BUCKET
export FIRESAFE_TEST_GARAGE_REGION=garage
export FIRESAFE_TEST_GARAGE_KEY_ID=$KEY_ID
export FIRESAFE_TEST_GARAGE_SECRET=$SECRET
export FIRESAFE_TEST_GARAGE_NODES=$NODES
EOF
