#!/usr/bin/env bash
# End-to-end benchmark: firesafe against restic, side by side, same machine, same datasets.
#
#   benches/e2e.sh                               # full size, 3 runs (about 1.5 GB unique per dataset)
#   BENCH_SCALE=0.02 BENCH_RUNS=1 benches/e2e.sh # smoke run, a minute or two
#
# Environment:
#   BENCH_DIR       work directory (datasets, repositories, logs, results.md); default /tmp/firesafe-bench
#   BENCH_SCALE     dataset size factor; default 1.0
#   BENCH_RUNS      repetitions of the whole measurement; the median per step is reported; default 3
#   BENCH_DATASETS  which datasets, of "school usr many"; default "school usr" (many is long)
#   BENCH_MANY_FILES   files in dataset many (0-4 KiB each); default 1,000,000 x BENCH_SCALE
#   BENCH_MANY_DIRS    folders they are spread over (two levels, about sqrt x sqrt);
#                   default 10,000 x BENCH_SCALE
#   BENCH_TOOLS     which tools to measure, of "firesafe restic"; default both (firesafe alone
#                   for example to see how its memory grows with BENCH_MANY_FILES)
#   BENCH_USR_SOURCES  directories copied (in this order, sorted inside) for dataset usr;
#                   default "/usr/lib/x86_64-linux-gnu /usr/share /usr/lib"
#   FIRESAFE_BIN    use this binary instead of building target/release/firesafe
#   FIRESAFE_DESC   how results.md names the firesafe build (default: the commit, or FIRESAFE_BIN)
#   BENCH_WARM      1 (default): read each step's input just before timing it; 0: do not
#   BENCH_REPORT_ONLY=1  only rewrite results.md from an existing $BENCH_DIR/raw.tsv
#   BENCH_DETECT=1  also measure ransomware detection's cost (firesafe with and without it);
#                   BENCH_DETECT_ONLY=1 measures only that; BENCH_DETECT_FILES sets the share's size
#   BENCH_PASSPHRASE=1  also time `snapshots` opened with a passphrase (firesafe's scrypt work
#                   factor against restic's key derivation) on a small repository;
#                   BENCH_PASSPHRASE_ONLY=1 measures only that; BENCH_PASSPHRASE_OLD_BIN names a
#                   firesafe from before 2^17 whose `init` makes a 2^18 envelope, timed as well
#
# Both tools encrypt and compress: firesafe with its defaults (zstd 3 where it pays, age), restic
# with repository format v2 and --compression auto. Page cache is not dropped (we cannot); each step
# runs for both tools one after the other (the first tool alternates between runs), and before each
# timed command its input (the source for a backup, the repository for restore and check) is read
# once so that both tools start warm (BENCH_WARM=0 turns this off), and `sync` runs so that neither
# pays for the other's writeback. Wall time is measured around each command; peak RSS comes from
# /usr/bin/time -v.
#
# Dataset many (BENCH_DATASETS=many, 1,000,000 files of 0-4 KiB in 10,000 folders by default) has
# only the first backup, the no-change backup and the full restore; its restores are verified
# against a digest of the source tree (names, kinds, sizes and contents), not with diff -r.
#
# Output: a markdown table on stdout and in $BENCH_DIR/results.md; raw numbers in
# $BENCH_DIR/raw.tsv; each command's output in $BENCH_DIR/logs/.
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="${BENCH_DIR:-/tmp/firesafe-bench}"
BENCH_SCALE="${BENCH_SCALE:-1.0}"
BENCH_RUNS="${BENCH_RUNS:-3}"
BENCH_DATASETS="${BENCH_DATASETS:-school usr}"
BENCH_USR_SOURCES="${BENCH_USR_SOURCES:-/usr/lib/x86_64-linux-gnu /usr/share /usr/lib}"
export BENCH_TOOLS="${BENCH_TOOLS:-firesafe restic}"

die() { echo "e2e.sh: FAILED: $*" >&2; exit 1; }
note() { echo "[$(date +%H:%M:%S)] $*" >&2; }

mkdir -p "$BENCH_DIR"
BENCH_DIR="$(cd "$BENCH_DIR" && pwd -P)"
DATA="$BENCH_DIR/data"
LOGS="$BENCH_DIR/logs"
RAW="$BENCH_DIR/raw.tsv"
mkdir -p "$DATA" "$LOGS"

# ---------------------------------------------------------------------------------------------
# Tools
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
has_tool() { [[ " $BENCH_TOOLS " == *" $1 "* ]]; }
[[ "${BENCH_DETECT_ONLY:-0}" == 1 ]] || ! has_tool restic || need_pkg restic restic
need_pkg /usr/bin/time time
need_pkg python3 python3
PYTHON="$(command -v python3)"
BENCH_MANY_FILES="${BENCH_MANY_FILES:-$("$PYTHON" -c "print(max(1, int(1_000_000 * $BENCH_SCALE)))")}"
BENCH_MANY_DIRS="${BENCH_MANY_DIRS:-$("$PYTHON" -c "print(max(1, int(10_000 * $BENCH_SCALE)))")}"

if [[ -n "${FIRESAFE_BIN:-}" ]]; then
    FIRESAFE="$FIRESAFE_BIN"
else
    note "building firesafe (cargo build --release)"
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
    FIRESAFE="$ROOT/target/release/firesafe"
fi
[[ -x "$FIRESAFE" ]] || die "no firesafe binary at $FIRESAFE"
RESTIC="$(command -v restic || true)"

# ---------------------------------------------------------------------------------------------
# Ransomware detection: its cost, firesafe with and without it (BENCH_DETECT=1 adds this;
# BENCH_DETECT_ONLY=1 runs only this). The share is tests/scripts/school-share.py's, with
# BENCH_DETECT_FILES files (default 40000 x BENCH_SCALE); two schedules differ only in
# `[ransomware] enabled = false`, each with its own repository. Timed: the first backup
# (`run --init`), a no-change backup, and a backup after one normal night (1-3% edited).
# ---------------------------------------------------------------------------------------------
detect_bench() {
    local dir="$BENCH_DIR/detect" files
    files="${BENCH_DETECT_FILES:-$("$PYTHON" -c "print(max(1000, int(40000 * $BENCH_SCALE)))")}"
    local out="$BENCH_DIR/detect.tsv"
    : >"$out"
    for run in $(seq 1 "$BENCH_RUNS"); do
        rm -rf "$dir" && mkdir -p "$dir/cfg/targets" "$dir/cfg/schedules"
        "$PYTHON" "$ROOT/tests/scripts/school-share.py" generate "$dir/share" --files "$files" --seed "$run"
        for mode in on off; do
            cat >"$dir/cfg/targets/$mode.toml" <<TOML
kind = "path"
location = "onsite"
medium = "nas"
path = "$dir/repo-$mode"
require_mount = false
TOML
            {
                printf 'cron = "0 2 * * *"\ntimezone = "Europe/London"\ntargets = ["%s"]\n' "$mode"
                printf 'key_file = "%s/%s.key"\n' "$dir" "$mode"
                printf '[[sources]]\nname = "share"\npath = "%s/share"\n' "$dir"
                printf '[policy]\nmin_copies = 1\nmin_media = 1\nmin_offsite = 0\n'
                [[ $mode == off ]] && printf '[ransomware]\nenabled = false\n'
            } >"$dir/cfg/schedules/$mode.toml"
        done
        local step mode wall user sys
        for step in first no-change night; do
            [[ $step == night ]] && "$PYTHON" "$ROOT/tests/scripts/school-share.py" night "$dir/share" --night "$run" >/dev/null
            # The first mode alternates between runs, so neither always reads a cold share.
            for mode in $( ((run % 2)) && echo "on off" || echo "off on"); do
                cat "$dir"/share/*/*/*/* >/dev/null 2>&1 || true
                sync
                local init=()
                [[ $step == first ]] && init=(--init)
                # Wall time, and CPU time (user + system), which other work on a shared machine
                # disturbs far less: detection's cost is CPU work.
                FIRESAFE_STATE_DIR="$dir/state-$mode" /usr/bin/time -f '%e %U %S' -o "$dir/time" \
                    "$FIRESAFE" run --config-dir "$dir/cfg" "$mode" "${init[@]}" \
                    >"$LOGS/detect-$mode-$step-$run.log" 2>&1 || die "detect bench: run $mode ($step) failed"
                read -r wall user sys <"$dir/time"
                printf '%s\t%s\t%s\t%s\t%s\n' "$step" "$mode" "$run" "$wall" "$(echo "$user + $sys" | bc -l)" >>"$out"
            done
        done
    done
    note "ransomware detection cost (median seconds over $BENCH_RUNS run(s), $files files):"
    "$PYTHON" - "$out" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
print("| backup | wall, with | wall, without | CPU, with | CPU, without | cost (median of paired CPU ratios) | cost (wall) |")
print("|---|---|---|---|---|---|---|")
for step in ("first", "no-change", "night"):
    def of(mode, col):
        return {r[2]: float(r[col]) for r in rows if r[0] == step and r[1] == mode}
    won, woff, con, coff = of("on", 3), of("off", 3), of("on", 4), of("off", 4)
    runs = sorted(set(won) & set(woff))
    ratio = statistics.median(con[r] / coff[r] for r in runs)
    wratio = statistics.median(won[r] / woff[r] for r in runs)
    print("| %s | %.3f s | %.3f s | %.3f s | %.3f s | %+.1f%% | %+.1f%% |" % (
        step, statistics.median(won.values()), statistics.median(woff.values()),
        statistics.median(con.values()), statistics.median(coff.values()),
        (ratio - 1) * 100, (wratio - 1) * 100))
PY
}
if [[ "${BENCH_DETECT:-0}" == 1 || "${BENCH_DETECT_ONLY:-0}" == 1 ]]; then
    need_pkg bc bc
    detect_bench
    [[ "${BENCH_DETECT_ONLY:-0}" == 1 ]] && exit 0
fi

# ---------------------------------------------------------------------------------------------
# Opening with a passphrase: what firesafe's scrypt work factor costs against restic's key
# derivation (BENCH_PASSPHRASE=1 adds this; BENCH_PASSPHRASE_ONLY=1 runs only this). One small
# repository per tool (a backup of two files), each with a passphrase as its only key: firesafe
# `init` with FIRESAFE_PASSPHRASE (an envelope of the current work factor), restic `init` with
# RESTIC_PASSWORD (restic calibrates its scrypt parameters on this machine at init). With
# BENCH_PASSPHRASE_OLD_BIN, a third repository is made by that older firesafe (a 2^18
# envelope) and opened by the current one. Timed: `snapshots`, BENCH_RUNS times each, the
# order of the repositories rotating between runs; wall time and peak RSS (/usr/bin/time -v).
# ---------------------------------------------------------------------------------------------
passphrase_bench() {
    local dir="$BENCH_DIR/passphrase" out="$BENCH_DIR/passphrase.tsv" pass="firesafe-bench-passphrase"
    rm -rf "$dir" && mkdir -p "$dir/src" "$LOGS"
    : >"$out"
    printf 'a small share\n' >"$dir/src/note.txt"
    head -c 1000000 /dev/urandom >"$dir/src/photo.jpg"
    local fs=(env -u FIRESAFE_KEY_FILE FIRESAFE_PASSPHRASE="$pass" FIRESAFE_STATE_DIR="$dir/state")
    local rs=(env RESTIC_PASSWORD="$pass" RESTIC_CACHE_DIR="$dir/restic-cache")
    local repos=(firesafe restic) r
    make_repo() { # name firesafe-binary
        "${fs[@]}" "$2" --repo "$dir/$1" init >"$LOGS/passphrase-init-$1.log" 2>&1 &&
            "${fs[@]}" "$FIRESAFE" --repo "$dir/$1" backup "$dir/src" --source share \
                >>"$LOGS/passphrase-init-$1.log" 2>&1 || die "passphrase bench: making $1 failed"
    }
    make_repo firesafe "$FIRESAFE"
    # The same repository opened with a key file instead: what `snapshots` costs without scrypt.
    "${fs[@]}" "$FIRESAFE" --repo "$dir/firesafe" key add --generate "$dir/firesafe.key" \
        >>"$LOGS/passphrase-init-firesafe.log" 2>&1 || die "passphrase bench: key add failed"
    repos+=(firesafe-keyfile)
    if [[ -n "${BENCH_PASSPHRASE_OLD_BIN:-}" ]]; then
        make_repo firesafe-old "$BENCH_PASSPHRASE_OLD_BIN"
        repos+=(firesafe-old)
    fi
    { "${rs[@]}" "$RESTIC" -r "$dir/restic" init --repository-version 2 &&
        "${rs[@]}" "$RESTIC" -r "$dir/restic" backup "$dir/src" --quiet; } \
        >"$LOGS/passphrase-init-restic.log" 2>&1 || die "passphrase bench: making restic failed"
    snapshots() { # repository -> the command, in SNAPSHOTS
        case $1 in
        restic) SNAPSHOTS=("${rs[@]}" "$RESTIC" -r "$dir/restic" snapshots) ;;
        firesafe-keyfile) SNAPSHOTS=(env -u FIRESAFE_PASSPHRASE FIRESAFE_KEY_FILE="$dir/firesafe.key"
            FIRESAFE_STATE_DIR="$dir/state" "$FIRESAFE" --repo "$dir/firesafe" snapshots) ;;
        *) SNAPSHOTS=("${fs[@]}" "$FIRESAFE" --repo "$dir/$1" snapshots) ;;
        esac
    }
    for r in "${repos[@]}"; do
        snapshots "$r"
        "${SNAPSHOTS[@]}" >/dev/null 2>&1 || die "passphrase bench: $r does not open"
    done
    local run i t0 t1 log
    for run in $(seq 1 "$BENCH_RUNS"); do
        for i in "${!repos[@]}"; do
            r=${repos[$(((i + run) % ${#repos[@]}))]}
            log="$LOGS/passphrase-$r-run$run"
            snapshots "$r"
            t0=$(date +%s%N)
            /usr/bin/time -v -o "$log.time" "${SNAPSHOTS[@]}" >"$log.log" 2>&1 ||
                die "passphrase bench: snapshots of $r failed; see $log.log"
            t1=$(date +%s%N)
            printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$run" "$(((t1 - t0) / 1000000))" \
                "$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log.time")" \
                "$(awk -F': ' '/(User|System) time/ {s += $2} END {print s}' "$log.time")" >>"$out"
        done
    done
    local factors=""
    for r in "${repos[@]}"; do
        [[ $r == restic || $r == firesafe-keyfile ]] && continue
        factors+="$r=$("${fs[@]}" "$FIRESAFE" --repo "$dir/$r" key list --json |
            "$PYTHON" -c 'import json, sys; print(max(k.get("scrypt_log_n", 0) for k in json.load(sys.stdin)))') "
    done
    note "opening with a passphrase: \`snapshots\` of a small repository (median of $BENCH_RUNS run(s)):"
    "$PYTHON" - "$out" "$dir/restic/keys" "$factors" <<'PY' | tee "$BENCH_DIR/passphrase.md"
import glob, json, statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
factors = dict(f.split("=") for f in sys.argv[3].split())
restic_key = json.load(open(glob.glob(sys.argv[2] + "/*")[0]))
kdf = {
    "restic": "scrypt N=2^%d, r=%d, p=%d (%d MiB), calibrated by `restic init`" % (
        restic_key["N"].bit_length() - 1, restic_key["r"], restic_key["p"],
        128 * restic_key["r"] * restic_key["N"] >> 20),
}
kdf["firesafe-keyfile"] = "none (the same repository as firesafe, opened with a key file)"
for name, n in factors.items():
    kdf[name] = "age scrypt N=2^%s, r=8, p=1 (%d MiB)" % (n, 1024 << int(n) >> 20)
print("| repository | key derivation | wall s | CPU s (user + system) | peak RSS MiB |")
print("|---|---|---:|---:|---:|")
def spread(xs, fmt):
    med = fmt % statistics.median(xs)
    return med if len(xs) == 1 else "%s (%s-%s)" % (med, fmt % min(xs), fmt % max(xs))
for name in dict.fromkeys(r[0] for r in rows):
    mine = [r for r in rows if r[0] == name]
    print("| %s | %s | %s | %s | %s |" % (
        name, kdf[name], spread([int(r[2]) / 1000 for r in mine], "%.2f"),
        spread([float(r[4]) for r in mine], "%.2f"), spread([int(r[3]) / 1024 for r in mine], "%.0f")))
PY
}
if [[ "${BENCH_PASSPHRASE:-0}" == 1 || "${BENCH_PASSPHRASE_ONLY:-0}" == 1 ]]; then
    passphrase_bench
    [[ "${BENCH_PASSPHRASE_ONLY:-0}" == 1 ]] && exit 0
fi

# ---------------------------------------------------------------------------------------------
# Datasets (generated once per scale; reused by later invocations)
# ---------------------------------------------------------------------------------------------

# (a) school share: incompressible office documents and photos, PDFs, CSV exports, a few large
# media files, and a curriculum folder copied into 30 class folders.
gen_school() { # dir scale
    "$PYTHON" - "$1" "$2" <<'PY'
import os, random, sys

root, scale = sys.argv[1], float(sys.argv[2])
MB = 1_000_000
written = [0, 0]  # files, bytes

def write(path, data_iter):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        for block in data_iter:
            f.write(block)
            written[1] += len(block)
    written[0] += 1

def random_blocks(rng, size, head=b""):
    yield head
    left = size - len(head)
    while left > 0:
        n = min(left, 8 << 20)
        yield rng.randbytes(n)
        left -= n

WORDS = ("pupil progress lesson objective assessment fractions photosynthesis Tudor river "
         "volcano algebra poetry persuasive writing homework governors safeguarding attendance "
         "curriculum phonics reading comprehension experiment hypothesis conclusion evaluate "
         "describe explain compare contrast the a of and to in is for on with as by").split()

def text(rng, n):
    out, size = [], 0
    while size < n:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))) + ".\n"
        out.append(line)
        size += len(line)
    return "".join(out).encode()[:n]

def pdf_blocks(rng, size):
    """Mostly compressed-looking streams (random), about a fifth text operators."""
    yield b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    left = size
    obj = 1
    while left > 0:
        if rng.random() < 0.2:
            body = b"BT /F1 11 Tf 72 720 Td (" + text(rng, rng.randint(2_000, 12_000)) + b") Tj ET"
        else:
            body = rng.randbytes(rng.randint(16_000, 160_000))
        block = b"%d 0 obj\n<< /Length %d >>\nstream\n" % (obj, len(body)) + body + b"\nendstream\nendobj\n"
        block = block[:left]
        left -= len(block)
        obj += 1
        yield block
    yield b"%%EOF\n"

FORENAMES = ["Amelia", "Oliver", "Isla", "George", "Ava", "Noah", "Mia", "Arthur", "Ivy",
             "Muhammad", "Freya", "Leo", "Lily", "Harry", "Florence", "Oscar", "Sophia", "Archie"]
SURNAMES = ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
            "Patel", "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts"]
SUBJECTS = ["English", "Mathematics", "Science", "History", "Geography", "French", "Art",
            "Music", "Computing", "PE", "RE", "DT"]
COMMENTS = ["working at the expected standard", "working towards the expected standard",
            "working at greater depth", "homework not handed in", "excellent progress",
            "needs to show working", "absent for assessment", ""]

def csv_blocks(rng, size):
    header = b"upn,forename,surname,year,class,subject,mark,grade,date,comment\n"
    yield header
    left = size - len(header)
    while left > 0:
        rows = []
        for _ in range(2000):
            r = rng.getrandbits(64)
            rows.append("A%012d,%s,%s,%d,%d%s,%s,%d,%s,2025-%02d-%02d,%s\n" % (
                r % 1_000_000_000_000, FORENAMES[(r >> 8) % 18], SURNAMES[(r >> 13) % 16],
                7 + (r >> 17) % 5, 7 + (r >> 17) % 5, "ABCDEF"[(r >> 20) % 6],
                SUBJECTS[(r >> 24) % 12], (r >> 28) % 101, "UDCBA*"[(r >> 36) % 6],
                1 + (r >> 40) % 12, 1 + (r >> 44) % 28, COMMENTS[(r >> 50) % 8]))
        block = "".join(rows).encode()[:left]
        left -= len(block)
        yield block

def pareto(rng, xm, alpha, cap):
    return int(min(cap, xm / (1.0 - rng.random()) ** (1.0 / alpha)))

# A few large media files / disk images.
rng = random.Random(1)
for i, (name, mb) in enumerate([("media/sports-day-2024.mp4", 100), ("media/nativity-2024.mp4", 150),
                                 ("it/images/classroom-pc.vhdx", 200)]):
    write(os.path.join(root, name), random_blocks(rng, max(1, int(mb * MB * scale))))

# Office documents and photos: incompressible, 50 KB to 5 MB, most of them small.
rng = random.Random(2)
budget, i = 750 * MB * scale, 0
start = written[1]
while written[1] - start < budget:
    size = pareto(rng, 50_000, 1.8, 5 * MB)
    if size > 1 * MB:
        path = "photos/%d-%s/IMG_%05d.jpg" % (2019 + i % 6, ["trip", "sports", "art", "science", "play"][i % 5], i)
        head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
    else:
        ext = ["docx", "xlsx", "pptx", "docx"][i % 4]
        if i % 3 == 0:
            path = "staff/staff%02d/Documents/%s/doc%05d.%s" % (i % 60, ["planning", "reports", "letters", "meetings"][i % 4], i, ext)
        else:
            path = "pupils/year%d/%d%s/pupil%04d/work%05d.%s" % (7 + i % 5, 7 + i % 5, "ABCDEF"[i % 6], i % 900, i, ext)
        head = b"PK\x03\x04\x14\x00\x06\x00"
    write(os.path.join(root, path), random_blocks(rng, size, head))
    i += 1

# PDFs: policies, newsletters, scanned letters.
rng = random.Random(3)
budget, i = 150 * MB * scale, 0
start = written[1]
while written[1] - start < budget:
    size = int(100_000 * 30 ** rng.random())  # 100 KB .. 3 MB
    folder = ["policies", "newsletters", "letters", "governors"][i % 4]
    write(os.path.join(root, "admin/%s/%s-%04d.pdf" % (folder, folder, i)), pdf_blocks(rng, size))
    i += 1

# CSV exports from the MIS: compress well.
rng = random.Random(4)
budget, i = 100 * MB * scale, 0
start = written[1]
while written[1] - start < budget:
    size = int(5_000 * 2000 ** rng.random())  # 5 KB .. 10 MB
    write(os.path.join(root, "admin/exports/%s/export-%04d.csv" % (["marks", "attendance", "behaviour"][i % 3], i)),
          csv_blocks(rng, size))
    i += 1

# The curriculum: about 50 MB of worksheets, slides, schemes of work and mark sheets.
rng = random.Random(5)
budget, i = 50 * MB * scale, 0
start = written[1]
while written[1] - start < budget:
    subject = SUBJECTS[i % 12]
    kind = i // 12 % 4
    base = os.path.join(root, "curriculum", subject)
    if kind == 0:
        write(os.path.join(base, "worksheet-%03d.docx" % i), random_blocks(rng, rng.randint(50_000, 500_000), b"PK\x03\x04"))
    elif kind == 1:
        write(os.path.join(base, "slides-%03d.pptx" % i), random_blocks(rng, rng.randint(500_000, 3_000_000), b"PK\x03\x04"))
    elif kind == 2:
        write(os.path.join(base, "scheme-%03d.pdf" % i), pdf_blocks(rng, rng.randint(100_000, 1_000_000)))
    else:
        write(os.path.join(base, "marksheet-%03d.csv" % i), csv_blocks(rng, rng.randint(20_000, 400_000)))
    i += 1
print("generated %d files, %.0f MB unique" % (written[0], written[1] / MB), file=sys.stderr)
PY
    # 30 class folders, each with an identical copy of the curriculum.
    local y c
    for y in 7 8 9 10 11; do
        for c in A B C D E F; do
            mkdir -p "$1/classes/$y$c"
            cp -r "$1/curriculum" "$1/classes/$y$c/curriculum"
        done
    done
}

# (b) real compressible files: copies of parts of /usr, until the budget is spent. Each source
# directory's entries are taken in sorted order; an entry larger than what is left of the budget is
# descended into; entries already copied (by an earlier, more specific source) are skipped.
REMAIN=0
copy_budget() { # src dst
    local src=$1 dst=$2 e sz
    mkdir -p "$dst"
    for e in "$src"/*; do
        [[ -e $e || -L $e ]] || continue
        ((REMAIN > 0)) || return 0
        [[ -e "$dst/${e##*/}" || -L "$dst/${e##*/}" ]] && continue
        [[ $e == "$BENCH_DIR"* ]] && continue
        sz=$(du -sbl "$e" 2>/dev/null | cut -f1) || sz="" # -l: cp -r does not keep hard links
        [[ -n $sz ]] || continue
        if ((sz <= REMAIN)); then
            cp -r "$e" "$dst/" 2>/dev/null || true # unreadable files are skipped
            REMAIN=$((REMAIN - sz))
        elif [[ -d $e && ! -L $e ]]; then
            copy_budget "$e" "$dst/${e##*/}"
        fi
    done
}
gen_usr() { # dir scale
    REMAIN=$("$PYTHON" -c "print(int(1_500_000_000 * float('$2')))")
    local src
    for src in $BENCH_USR_SOURCES; do
        ((REMAIN > 0)) || break
        [[ -d $src ]] || continue
        copy_budget "$src" "$1$src" # /usr/share -> DIR/usr/share
    done
}

# (c) many small files: BENCH_MANY_FILES files of 0-4 KiB (uniform sizes) in BENCH_MANY_DIRS
# folders of two levels (d000/d000 ...; 100 x 100 for 10,000). About 45% are text (slices of a
# generated text at random offsets: compressible, not duplicates), 35% random bytes
# (incompressible), 20% copies of 500 templates (the same letter or blank form in many folders).
# Seeded: the same names, sizes and contents every time.
gen_many() { # dir files dirs
    "$PYTHON" - "$1" "$2" "$3" <<'PY'
import math, os, random, sys, time

root, nfiles, ndirs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(6)
WORDS = ("pupil progress lesson objective assessment fractions photosynthesis Tudor river "
         "volcano algebra poetry persuasive writing homework governors safeguarding attendance "
         "curriculum phonics reading comprehension experiment hypothesis conclusion evaluate "
         "describe explain compare contrast the a of and to in is for on with as by").split()
lines, size = [], 0
while size < 2_000_000:
    line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))) + ".\n"
    lines.append(line)
    size += len(line)
corpus = "".join(lines).encode()
templates = []
for i in range(500):
    n = rng.randint(0, 4096)
    if i % 2:
        templates.append(rng.randbytes(n))
    else:
        off = rng.randrange(len(corpus) - 4096)
        templates.append(corpus[off:off + n])

per = math.isqrt(ndirs - 1) + 1 if ndirs > 1 else 1  # folders per top-level folder
flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
written, nbytes, started = 0, 0, time.time()
for leaf in range(ndirs):
    top, sub = divmod(leaf, per)
    d = os.path.join(root, "d%03d" % top, "d%03d" % sub)
    os.makedirs(d)
    for k in range(nfiles // ndirs + (leaf < nfiles % ndirs)):
        n = rng.randint(0, 4096)
        kind = rng.random()
        if kind < 0.45:
            off = rng.randrange(len(corpus) - 4096)
            data, ext = corpus[off:off + n], "txt"
        elif kind < 0.80:
            data, ext = rng.randbytes(n), "bin"
        else:
            t = rng.randrange(len(templates))
            data, ext = templates[t], "docx"
        fd = os.open(os.path.join(d, "f%05d.%s" % (k, ext)), flags, 0o644)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.close(fd)
        written += 1
        nbytes += len(data)
        if written % 200_000 == 0:
            print("  %d files written (%.0f s)" % (written, time.time() - started), file=sys.stderr)
print("generated %d files in %d folders, %.0f MB, in %.0f s" % (
    written, ndirs, nbytes / 1e6, time.time() - started), file=sys.stderr)
PY
}

# Prints "files bytes digest" of a tree: a digest of every entry's relative path, kind, size and
# content (or link target), in sorted order. Two trees with the same digest hold the same files.
tree_digest() { # dir
    "$PYTHON" - "$1" <<'PY'
import hashlib, os, sys

root = os.fsencode(sys.argv[1])
h = hashlib.blake2b(digest_size=32)
count = [0, 0]

def walk(rel):
    with os.scandir(os.path.join(root, rel) if rel else root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        r = rel + b"/" + e.name if rel else e.name
        if e.is_symlink():
            h.update(b"L%s\0%s\0" % (r, os.readlink(e.path)))
        elif e.is_dir():
            h.update(b"D%s\0" % r)
            walk(r)
        elif e.is_file():
            with open(e.path, "rb") as f:
                data = f.read()
            h.update(b"F%s\0%d\0" % (r, len(data)))
            h.update(data)
            count[0] += 1
            count[1] += len(data)
        else:
            h.update(b"O%s\0" % r)

walk(b"")
print(count[0], count[1], h.hexdigest())
PY
}

ensure_dataset() { # name
    local name=$1 dir="$DATA/$1" stamp="$DATA/$1.done" key="$BENCH_SCALE"
    [[ $name == many ]] && key="$BENCH_SCALE files=$BENCH_MANY_FILES dirs=$BENCH_MANY_DIRS"
    if [[ -f $stamp && $(cat "$stamp") == "$key" ]]; then
        return 0
    fi
    note "generating dataset $name ($key)"
    rm -rf "$dir" "$stamp" "$DATA/$name.modlist" "$DATA/$name.digest"
    mkdir -p "$dir"
    case $name in
    school) gen_school "$dir" "$BENCH_SCALE" ;;
    usr) gen_usr "$dir" "$BENCH_SCALE" ;;
    many) gen_many "$dir" "$BENCH_MANY_FILES" "$BENCH_MANY_DIRS" ;;
    *) die "unknown dataset $name" ;;
    esac
    if [[ $name == many ]]; then
        : >"$DATA/$name.modlist" # no "1% changed" backup for this one
        note "digest of dataset $name (to verify restores)"
        tree_digest "$dir" >"$DATA/$name.digest"
    else
        # The files a "1% changed" backup sees modified: every 100th regular file, in sorted order.
        (cd "$dir" && find . -type f | sort | awk 'NR % 100 == 50' | while IFS= read -r f; do
            printf '%s\t%s\n' "$(stat -c %s "$f")" "$f"
        done) >"$DATA/$name.modlist"
    fi
    echo "$key" >"$stamp"
}

# Appends about 4 KB to each listed file (the same bytes every run).
modify_dataset() { # name
    local size f pad
    pad="$(printf 'firesafe-bench: this line was appended to simulate an edit.\n%.0s' {1..64})"
    while IFS=$'\t' read -r size f; do
        printf '%s' "$pad" >>"$DATA/$1/$f"
    done <"$DATA/$1.modlist"
}
# Undoes modify_dataset (also after an interrupted earlier invocation).
revert_dataset() { # name
    local size f
    while IFS=$'\t' read -r size f; do
        truncate -s "$size" "$DATA/$1/$f"
    done <"$DATA/$1.modlist"
}

dataset_summary() { # name -> "files bytes [folders]"
    local dir="$DATA/$1"
    local files bytes
    files=$(find "$dir" -type f | wc -l)
    bytes=$(find "$dir" -type f -printf '%s\n' | awk '{s+=$1} END {printf "%.0f", s}')
    if [[ $1 == many ]]; then
        echo "$files $bytes $(find "$dir" -mindepth 2 -maxdepth 2 -type d | wc -l)"
    else
        echo "$files $bytes"
    fi
}

# ---------------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------------
# measure DATASET STEP TOOL RUN ok-codes -- command...
# Appends "dataset step tool run seconds maxrss_kib rc" to raw.tsv.
measure() {
    local ds=$1 step=$2 tool=$3 run=$4 ok=$5
    shift 6
    local log="$LOGS/$ds.$step.$tool.run$run"
    sync
    local t0 t1 rc=0
    t0=$(date +%s%N)
    /usr/bin/time -v -o "$log.time" "$@" >"$log.log" 2>&1 || rc=$?
    t1=$(date +%s%N)
    if [[ " $ok " != *" $rc "* ]]; then
        tail -n 30 "$log.log" >&2 || true
        die "$tool $step on $ds (run $run) exited with $rc; see $log.log"
    fi
    [[ $rc == 0 ]] || note "WARNING: $tool $step on $ds exited with $rc (accepted); see $log.log"
    local rss secs
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log.time")
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ds" "$step" "$tool" "$run" "$secs" "$rss" "$rc" >>"$RAW"
    note "  $ds $step $tool: ${secs}s, peak RSS $((rss / 1024)) MiB"
}

# Reads files so that they are in the page cache. This VM pages out idle page cache within seconds
# (DAMON), so without this the second tool of a pair finds the data the first one just read.
warm() { # paths...
    [[ "${BENCH_WARM:-1}" == 1 ]] || return 0
    find "$@" -type f -print0 2>/dev/null | xargs -0 -r cat >/dev/null 2>&1 || true
}

# One tool's command for one step. Exit codes accepted: firesafe 1 = finished with warnings,
# restic 3 = some source files could not be read.
step_cmd() { # tool step dataset run
    local tool=$1 step=$2 ds=$3 run=$4
    local src="$DATA/$ds" repo="$BENCH_DIR/repo/$tool-$ds" out="$BENCH_DIR/restore/$tool-$ds"
    case $step in
    backup*) warm "$src" ;;
    *) warm "$repo" "$RESTIC_CACHE_DIR" ;;
    esac
    case "$tool:$step" in
    firesafe:backup*) measure "$ds" "$step" "$tool" "$run" "0 1" -- \
        "$FIRESAFE" --repo "$repo" backup "$src" --source "$ds" ;;
    restic:backup*) measure "$ds" "$step" "$tool" "$run" "0 3" -- \
        "$RESTIC" -r "$repo" backup "$src" --compression auto --quiet ;;
    firesafe:restore) measure "$ds" "$step" "$tool" "$run" "0" -- \
        "$FIRESAFE" --repo "$repo" restore latest --to "$out" ;;
    restic:restore) measure "$ds" "$step" "$tool" "$run" "0" -- \
        "$RESTIC" -r "$repo" restore latest --target "$out" --quiet ;;
    firesafe:check) measure "$ds" "$step" "$tool" "$run" "0" -- \
        "$FIRESAFE" --repo "$repo" check --read-data ;;
    restic:check) measure "$ds" "$step" "$tool" "$run" "0" -- \
        "$RESTIC" -r "$repo" check --read-data ;;
    *) die "no command for $tool $step" ;;
    esac
}

verify_restore() { # tool dataset
    local tool=$1 ds=$2 out="$BENCH_DIR/restore/$1-$2" got
    case $tool in
    firesafe) got="$out/$ds" ;;               # firesafe: DIR/<basename of PATH>
    restic) got="$out$DATA/$ds" ;;            # restic: DIR/<absolute path>
    esac
    [[ -d $got ]] || die "$tool restore of $ds: $got does not exist"
    if [[ $ds == many ]]; then
        # A million files: one digest of each tree (diff -r would read the source again each time).
        local want have t0=$SECONDS
        want=$(cat "$DATA/$ds.digest")
        have=$(tree_digest "$got")
        note "  $ds restore by $tool verified in $((SECONDS - t0)) s: $have"
        [[ $have == "$want" ]] && return 0
        diff -r --no-dereference "$DATA/$ds" "$got" >"$LOGS/$ds.diff.$tool" 2>&1 || true
        head -n 20 "$LOGS/$ds.diff.$tool" >&2
        echo "source: $want; restored: $have" >>"$LOGS/$ds.diff.$tool"
        if [[ $tool == firesafe ]]; then
            die "the firesafe restore of $ds differs from the source (files bytes digest: $have, want $want; see $LOGS/$ds.diff.$tool)"
        fi
        note "WARNING: the restic restore of $ds differs from the source (files bytes digest: $have, want $want; see $LOGS/$ds.diff.$tool)"
        return 0
    fi
    if ! diff -r --no-dereference "$DATA/$ds" "$got" >"$LOGS/$ds.diff.$tool" 2>&1; then
        head -n 20 "$LOGS/$ds.diff.$tool" >&2
        if [[ $tool == firesafe ]]; then
            die "the firesafe restore of $ds differs from the source (see $LOGS/$ds.diff.$tool)"
        fi
        note "WARNING: the restic restore of $ds differs from the source (see $LOGS/$ds.diff.$tool)"
    fi
}

export FIRESAFE_KEY_FILE="$BENCH_DIR/firesafe.key"
export RESTIC_PASSWORD="firesafe-bench-password"
export RESTIC_CACHE_DIR="$BENCH_DIR/restic-cache"
unset FIRESAFE_REPO RESTIC_REPOSITORY RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND FIRESAFE_PASSPHRASE || true

run_dataset() { # dataset run first second
    local ds=$1 run=$2 tools=() t step
    for t in "$3" "$4"; do has_tool "$t" && tools+=("$t"); done
    ((${#tools[@]})) || die "BENCH_TOOLS=\"$BENCH_TOOLS\" names neither firesafe nor restic"
    rm -rf "$BENCH_DIR/repo" "$BENCH_DIR/restore" "$RESTIC_CACHE_DIR" "$FIRESAFE_KEY_FILE"
    mkdir -p "$BENCH_DIR/repo" "$BENCH_DIR/restore"
    revert_dataset "$ds"
    if has_tool firesafe; then
        "$FIRESAFE" --repo "$BENCH_DIR/repo/firesafe-$ds" init --generate-key "$FIRESAFE_KEY_FILE" \
            >"$LOGS/$ds.init.firesafe.run$run.log" 2>&1 || die "firesafe init failed"
    fi
    if has_tool restic; then
        "$RESTIC" -r "$BENCH_DIR/repo/restic-$ds" init --repository-version 2 \
            >"$LOGS/$ds.init.restic.run$run.log" 2>&1 || die "restic init failed"
    fi

    for t in "${tools[@]}"; do step_cmd "$t" backup1 "$ds" "$run"; done
    for t in "${tools[@]}"; do
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ds" repo_first "$t" "$run" \
            "$(du -sb "$BENCH_DIR/repo/$t-$ds" | cut -f1)" 0 0 >>"$RAW"
    done
    for t in "${tools[@]}"; do step_cmd "$t" backup2_nochange "$ds" "$run"; done
    if [[ $ds != many ]]; then
        modify_dataset "$ds"
        for t in "${tools[@]}"; do step_cmd "$t" backup3_1pct "$ds" "$run"; done
    fi
    for t in "${tools[@]}"; do step_cmd "$t" restore "$ds" "$run"; done
    for t in "${tools[@]}"; do verify_restore "$t" "$ds"; done
    rm -rf "$BENCH_DIR/restore"
    if [[ $ds != many ]]; then
        for t in "${tools[@]}"; do step_cmd "$t" check "$ds" "$run"; done
    fi
    for t in "${tools[@]}"; do
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ds" repo_final "$t" "$run" \
            "$(du -sb "$BENCH_DIR/repo/$t-$ds" | cut -f1)" 0 0 >>"$RAW"
    done
    revert_dataset "$ds"
    rm -rf "$BENCH_DIR/repo" "$RESTIC_CACHE_DIR"
}

if [[ "${BENCH_REPORT_ONLY:-0}" == 1 ]]; then
    # Rewrite results.md from an existing raw.tsv (for example after an interrupted run).
    elapsed=0
    BENCH_RUNS="$(awk -F'\t' '{print $4}' "$RAW" | sort -u | wc -l)"
    BENCH_SCALE="$(awk '{print $1}' "$DATA/${BENCH_DATASETS%% *}.done" 2>/dev/null || echo "$BENCH_SCALE")"
else
    for ds in $BENCH_DATASETS; do ensure_dataset "$ds"; done

    : >"$RAW"
    for ds in $BENCH_DATASETS; do
        read -r files bytes < <(dataset_summary "$ds")
        echo "$ds $files $bytes" >"$DATA/$ds.summary"
    done
    started=$(date +%s)
    for ((run = 1; run <= BENCH_RUNS; run++)); do
        for ds in $BENCH_DATASETS; do
            if ((run % 2 == 1)); then order=(firesafe restic); else order=(restic firesafe); fi
            note "run $run/$BENCH_RUNS, dataset $ds (${order[0]} first)"
            run_dataset "$ds" "$run" "${order[@]}"
        done
    done
    elapsed=$(($(date +%s) - started))
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
    if ! (cd "$ROOT" && git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null); then
        commit="$commit (with uncommitted changes in src/)"
    fi
fi
"$PYTHON" - "$RAW" "$DATA" "$BENCH_DATASETS" "$BENCH_SCALE" "$BENCH_RUNS" "$elapsed" "$commit" \
    "$(if has_tool restic; then "$RESTIC" version | head -n1; else echo "restic not measured (BENCH_TOOLS=$BENCH_TOOLS)"; fi)" "$(nproc)" \
    "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" \
    "$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)" "$(uname -r)" \
    >"$BENCH_DIR/results.md" <<'PY'
import os, statistics, sys
from collections import defaultdict

raw, data, datasets, scale, runs, elapsed, commit, restic, cores, cpu, mem, kernel = sys.argv[1:13]
vals = defaultdict(list)
rss = defaultdict(list)
for line in open(raw):
    ds, step, tool, run, v, r, rc = line.rstrip("\n").split("\t")
    vals[ds, step, tool].append(float(v))
    rss[ds, step, tool].append(int(r))

med = lambda xs: statistics.median(xs)
TITLES = {"school": "(a) school share", "usr": "(b) /usr copies (compressible real files)",
          "many": "(c) many small files (0-4 KiB)"}
STEPS = [("backup1", "first backup"), ("backup2_nochange", "no-change backup"),
         ("backup3_1pct", "backup after 1% of files changed"), ("restore", "full restore"),
         ("check", "check --read-data")]
TARGETS = {("school", "backup1"): 2.0, ("usr", "backup1"): 1.6, ("usr", "backup2_nochange"): 4.0,
           ("school", "restore"): 2.0, ("usr", "restore"): 2.0,
           ("school", "check"): 1.5, ("usr", "check"): 1.5,
           ("many", "backup1"): 2.0, ("many", "backup2_nochange"): 2.0, ("many", "restore"): 2.0}
# Dataset many's memory goal: peak RSS under 250 MiB, and no more than restic's.
RSS_CAP = {"many": 250}

def spread(xs, fmt="%.1f"):
    return (fmt % med(xs)) if len(xs) == 1 else ("%s (%s-%s)" % (fmt % med(xs), fmt % min(xs), fmt % max(xs)))

print("# firesafe vs restic, end to end\n")
print(f"- firesafe {commit}; {restic}")
print(f"- machine: {cores} cores ({cpu}), {mem} RAM, Linux {kernel}; shared and noisy")
print(f"- BENCH_SCALE={scale}, BENCH_RUNS={runs}: each value is the median of {runs} run(s) "
      "(min-max in brackets); speed-up is the ratio of the medians, per-run speed-ups pair the two "
      "tools' runs of the same step (a target counts as met when both reach it); " +
      ("each step runs for both tools back to back, the first tool alternating between runs; "
       if "restic" in os.environ.get("BENCH_TOOLS", "firesafe restic").split() else
       "firesafe alone (BENCH_TOOLS=firesafe); ") + ("each step's input read just before it (page cache warm)"
      if os.environ.get("BENCH_WARM", "1") == "1" else "no pre-read of the inputs (BENCH_WARM=0)"))
if int(elapsed) > 0:
    print(f"- measurement took {int(elapsed) // 60} min {int(elapsed) % 60} s")
print()
for ds in datasets.split():
    name, files, size, *folders = open(f"{data}/{ds}.summary").read().split()
    where = f" in {int(folders[0]):,} folders" if folders else ""
    print(f"## {TITLES.get(ds, ds)}: {int(files):,} files{where}, {float(size) / 1e9:.2f} GB\n")
    print("| step | firesafe s | restic s | speed-up (restic/firesafe) | per-run speed-ups | target | firesafe peak RSS MiB | restic peak RSS MiB |")
    print("|---|---:|---:|---:|---|---|---:|---:|")
    for step, title in STEPS:
        f, r = vals.get((ds, step, "firesafe")), vals.get((ds, step, "restic"))
        if not f and not r:
            continue
        if not f or not r:  # one tool only (BENCH_TOOLS)
            one = f or r
            rs = med(rss[ds, step, "firesafe" if f else "restic"]) / 1024
            cap = RSS_CAP.get(ds)
            cap_note = f" **(> {cap} MiB)**" if cap and rs > cap else ""
            fs, rst = (spread(f), "-") if f else ("-", spread(r))
            fm, rm = (f"{rs:.0f}{cap_note}", "-") if f else ("-", f"{rs:.0f}{cap_note}")
            print(f"| {title} | {fs} | {rst} | | | | {fm} | {rm} |")
            continue
        speed = med(r) / med(f) if med(f) > 0 else float("inf")
        # The same run's pair, which saw the same machine load: a second view of the noise.
        paired = [b / a for a, b in zip(f, r) if a > 0]
        t = TARGETS.get((ds, step))
        if t is None:
            target = ""
        else:
            hits = (speed >= t) + (med(paired) >= t)
            target = "%.1fx %s" % (t, ["**missed**", "**borderline**", "met"][hits])
        fr, rr = med(rss[ds, step, "firesafe"]) / 1024, med(rss[ds, step, "restic"]) / 1024
        mem_note = "" if fr <= rr else " **(> restic)**"
        cap = RSS_CAP.get(ds)
        if cap and fr > cap:
            mem_note += f" **(> {cap} MiB)**"
        rmem_note = f" **(> {cap} MiB)**" if cap and rr > cap else ""
        runs_s = ", ".join("%.2f" % x for x in paired)
        print(f"| {title} | {spread(f)} | {spread(r)} | {speed:.2f}x | {runs_s} | {target} | {fr:.0f}{mem_note} | {rr:.0f}{rmem_note} |")
    for step, title in [("repo_first", "repository size after first backup"),
                        ("repo_final", "repository size after %d backups" % (2 if ds == "many" else 3))]:
        if not vals.get((ds, step, "firesafe")) or not vals.get((ds, step, "restic")):
            one = [(t, vals[ds, step, t]) for t in ("firesafe", "restic") if vals.get((ds, step, t))]
            for t, v in one:
                cells = ["%s MB" % format(med(v) / 1e6, ",.1f"), "-"]
                print(f"| {title} | {' | '.join(cells if t == 'firesafe' else cells[::-1])} | | | | | |")
            continue
        f, r = med(vals[ds, step, "firesafe"]), med(vals[ds, step, "restic"])
        diff = (f / r - 1) * 100
        verdict = "within 3%: met" if abs(diff) <= 3 else ("smaller: met" if diff < 0 else "**larger by more than 3%: missed**")
        print(f"| {title} | {f / 1e6:,.1f} MB | {r / 1e6:,.1f} MB | firesafe/restic {f / r:.3f} ({diff:+.1f}%) | | {verdict} | | |")
    print()
PY
cat "$BENCH_DIR/results.md"
note "results written to $BENCH_DIR/results.md (raw numbers in $RAW)"
