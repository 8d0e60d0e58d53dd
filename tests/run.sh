#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need (age and zstd for the
# recovery test, Python venvs for the S3 server and for aiosmtpd, cargo-nextest), starts a
# SeaweedFS S3 server on 127.0.0.1, runs every unit and integration test against the local filesystem and against S3,
# and stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[tests/run.sh] $*" >&2; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
command -v age >/dev/null || missing+=(age)
command -v zstd >/dev/null || missing+=(zstd)
command -v curl >/dev/null || missing+=(curl)
command -v ss >/dev/null || missing+=(iproute2)
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

# aiosmtpd, the SMTP server the alert tests run on 127.0.0.1.
TEST_VENV="${FIRESAFE_TEST_VENV:-$HOME/.cache/firesafe-test-venv}"
if ! "$TEST_VENV/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
  log "installing aiosmtpd into $TEST_VENV"
  python3 -m venv "$TEST_VENV"
  "$TEST_VENV/bin/pip" install -q 'aiosmtpd==1.4.6' >&2
fi
export FIRESAFE_TEST_PYTHON="$TEST_VENV/bin/python"
command -v openssl >/dev/null || { $SUDO apt-get update -qq >&2; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openssl >&2; }

S3_DIR="$(mktemp -d "${TMPDIR:-/tmp}/firesafe-s3.XXXXXX")"
cleanup() { tests/scripts/seaweedfs-stop.sh "$S3_DIR" --purge || true; }
trap cleanup EXIT
s3_env="$(tests/scripts/seaweedfs-start.sh "$S3_DIR" --bucket firesafe-test)"
eval "$s3_env"
export FIRESAFE_TEST_S3=1

# The benchmarks are not run here (they time things), but they must keep building.
cargo build --benches >&2
cargo nextest run --lib --bins --test integration --no-fail-fast "$@"
