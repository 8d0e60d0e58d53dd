#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need (age and zstd for the
# recovery test, Python venvs for the S3 server and for aiosmtpd, cargo-nextest, Garage built once
# from crates.io), starts a SeaweedFS S3 server and a 3-node Garage cluster on 127.0.0.1, runs every
# unit and integration test against the local filesystem and against S3, and stops the servers.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[tests/run.sh] $*" >&2; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# Garage, the distributed object store of the multi-node test, comes only from crates.io. Its
# first build takes minutes, so it starts now, beside everything else, and is kept in
# ~/.cache/firesafe-garage for later runs.
GARAGE_BUILD_LOG="$(mktemp "${TMPDIR:-/tmp}/firesafe-garage-build.XXXXXX")"
setsid tests/scripts/garage-start.sh --install-only >"$GARAGE_BUILD_LOG" 2>&1 &
GARAGE_BUILD=$!
GARAGE_DIR=""
trap '[ -z "$GARAGE_BUILD" ] || kill -- -"$GARAGE_BUILD" 2>/dev/null; rm -f "$GARAGE_BUILD_LOG"' EXIT

missing=()
command -v age >/dev/null || missing+=(age)
command -v zstd >/dev/null || missing+=(zstd)
# The report tests render PDFs with poppler and open the HTML in headless Chromium.
command -v pdftoppm >/dev/null || missing+=(poppler-utils)
command -v chromium >/dev/null || missing+=(chromium)
command -v curl >/dev/null || missing+=(curl)
command -v ss >/dev/null || missing+=(iproute2)
# script, which gives the progress test a pseudo-terminal.
command -v script >/dev/null || missing+=(bsdutils)
# fusermount, for the `firesafe mount` test (which mounts only where /dev/fuse exists).
[ -e /dev/fuse ] && ! command -v fusermount >/dev/null && ! command -v fusermount3 >/dev/null && missing+=(fuse3)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install cargo-nextest --locked >&2
fi

# aiosmtpd, the SMTP server the alert tests run on 127.0.0.1; boto3, a second S3 client that
# the object-lock test uses to create a locked bucket and to try to delete what firesafe wrote.
TEST_VENV="${FIRESAFE_TEST_VENV:-$HOME/.cache/firesafe-test-venv}"
if ! "$TEST_VENV/bin/python" -c 'import aiosmtpd, boto3' 2>/dev/null; then
  log "installing aiosmtpd and boto3 into $TEST_VENV"
  python3 -m venv "$TEST_VENV"
  "$TEST_VENV/bin/pip" install -q 'aiosmtpd==1.4.6' 'boto3==1.44.5' >&2
fi
export FIRESAFE_TEST_PYTHON="$TEST_VENV/bin/python"
command -v openssl >/dev/null || { $SUDO apt-get update -qq >&2; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openssl >&2; }

S3_DIR="$(mktemp -d "${TMPDIR:-/tmp}/firesafe-s3.XXXXXX")"
cleanup() {
  tests/scripts/seaweedfs-stop.sh "$S3_DIR" --purge || true
  [ -z "$GARAGE_BUILD" ] || kill -- -"$GARAGE_BUILD" 2>/dev/null || true
  [ -z "$GARAGE_DIR" ] || tests/scripts/garage-stop.sh "$GARAGE_DIR" --purge || true
  rm -f "$GARAGE_BUILD_LOG"
}
trap cleanup EXIT
s3_env="$(tests/scripts/seaweedfs-start.sh "$S3_DIR" --bucket firesafe-test)"
eval "$s3_env"
export FIRESAFE_TEST_S3=1

# The benchmarks are not run here (they time things), but they must keep building.
cargo build --benches >&2
# The tests too, while garage may still be building.
cargo nextest run --lib --bins --test integration --no-run >&2

# A Garage cluster of 3 nodes, every object on all three, once its build has finished.
kill -0 "$GARAGE_BUILD" 2>/dev/null && log "waiting for the garage build to finish"
if ! wait "$GARAGE_BUILD"; then
  GARAGE_BUILD=""; cat "$GARAGE_BUILD_LOG" >&2; log "building garage failed"; exit 1
fi
GARAGE_BUILD=""
cat "$GARAGE_BUILD_LOG" >&2
GARAGE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/firesafe-garage.XXXXXX")"
garage_env="$(tests/scripts/garage-start.sh "$GARAGE_DIR" --nodes 3)"
eval "$garage_env"

cargo nextest run --lib --bins --test integration --no-fail-fast "$@"
