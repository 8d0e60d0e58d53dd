#!/usr/bin/env bash
# garage-schools.sh: one store, many schools. On a trust's Garage cluster (an S3-compatible
# object store), gives each school its own bucket and its own access key, which can read and write
# that bucket and no other, and gives the trust one read-only key, trust-read, for every school's
# bucket (enough for `firesafe fleet status`, which opens no school's data).
#
# Usage:
#   scripts/garage-schools.sh --out DIR [options] "Oak Primary" "Elm Academy" ...
#   scripts/garage-schools.sh --out DIR [options] --schools schools.txt
#
# For each school (school names as the schools' site.toml give them; in a file, one a line, blank
# lines and lines starting with # skipped) it makes, if they are not there yet:
#   - the bucket school-NAME (NAME is the school's name in lower case, each run of other
#     characters than a-z and 0-9 made one -: "St Mary's C of E" -> school-st-mary-s-c-of-e);
#   - the key school-NAME, allowed to read and write that bucket only;
#   - the trust's key (trust-read unless --trust-key names another), allowed to read it (never
#     to write).
# Running it again changes nothing: existing buckets and keys are kept, with their secrets.
# In DIR (created, readable by you only) it writes:
#   NAME.env          the school's credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
#                     AWS_ENDPOINT_URL, AWS_REGION): /etc/firesafe/credentials.env at the school,
#                     EnvironmentFile= in firesafe.service. Mode 0600.
#   NAME-cloud.toml   the school's offsite target: targets/offsite.toml at the school.
#   trust-read.env    the trust's read-only credentials, for `firesafe fleet status` (named after
#                     the trust's key: TRUST-KEY.env with --trust-key). Mode 0600.
# and prints, on standard output, the [[school]] entries for the trust's fleet.toml.
#
# Options:
#   --out DIR        where the files go (required)
#   --schools FILE   read the school names from FILE (- for standard input)
#   -c, --config F   the garage.toml of a node of the cluster, which the garage command uses to
#                    reach it (default: $GARAGE_CONFIG_FILE, else /etc/garage.toml)
#   --garage BIN     the garage program (default: $GARAGE_BIN, else garage on the PATH, else
#                    ~/.cache/firesafe-garage/bin/garage)
#   --cluster DIR    a test cluster started by tests/scripts/garage-start.sh DIR (its garage
#                    program and node 0's garage.toml)
#   --endpoint URL   the address the schools reach the cluster's S3 API at, e.g.
#                    https://s3.trust.example (default: the config's [s3_api] api_bind_addr,
#                    over http, when it is a single address)
#   --region NAME    the S3 region (default: the config's [s3_api] s3_region, else garage)
#   --trust-key NAME the name of the trust's read-only key (default trust-read): lower-case
#                    letters, digits and -, not starting school-
#   -h, --help       this help
set -euo pipefail
shopt -s inherit_errexit

PROG=garage-schools
die() { echo "$PROG: $*" >&2; exit 1; }
usage_error() { echo "$PROG: $*; see $0 --help" >&2; exit 2; }
log() { echo "[$PROG] $*" >&2; }

OUT=""
SCHOOLS_FILE=""
CONFIG="${GARAGE_CONFIG_FILE:-}"
GARAGE="${GARAGE_BIN:-}"
ENDPOINT=""
REGION=""
TRUST_KEY=trust-read
NAMES=()
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || usage_error "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out) need_value "$@"; OUT="$2"; shift 2 ;;
    --schools) need_value "$@"; SCHOOLS_FILE="$2"; shift 2 ;;
    -c|--config) need_value "$@"; CONFIG="$2"; shift 2 ;;
    --garage) need_value "$@"; GARAGE="$2"; shift 2 ;;
    --cluster)
      need_value "$@"
      [ -f "$2/node0/garage.toml" ] || die "$2 is not a cluster started by tests/scripts/garage-start.sh (no $2/node0/garage.toml)"
      CONFIG="$2/node0/garage.toml"
      [ -f "$2/garage-bin" ] && GARAGE="$(cat "$2/garage-bin")"
      shift 2 ;;
    --endpoint) need_value "$@"; ENDPOINT="$2"; shift 2 ;;
    --region) need_value "$@"; REGION="$2"; shift 2 ;;
    --trust-key) need_value "$@"; TRUST_KEY="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; NAMES+=("$@"); break ;;
    -*) usage_error "unknown option $1" ;;
    *) NAMES+=("$1"); shift ;;
  esac
done

# ---------- the school names ----------
if [ -n "$SCHOOLS_FILE" ]; then
  [ "$SCHOOLS_FILE" = - ] || [ -r "$SCHOOLS_FILE" ] || die "cannot read the school list $SCHOOLS_FILE"
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line%$'\r'}"
    line="$(printf '%s' "$line" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')"
    [ -z "$line" ] || [ "${line:0:1}" = "#" ] || NAMES+=("$line")
  done < <(if [ "$SCHOOLS_FILE" = - ]; then cat; else cat "$SCHOOLS_FILE"; fi)
fi
[ -n "$OUT" ] || usage_error "give --out DIR, the directory for the schools' credentials and targets"
[ ${#NAMES[@]} -gt 0 ] || usage_error "give the school names, as arguments or with --schools FILE"
case "$TRUST_KEY" in
  school-*) usage_error "--trust-key $TRUST_KEY would look like a school's key (school-NAME); give another name" ;;
  *[!a-z0-9-]*) usage_error "--trust-key must be lower-case letters, digits and - only, not $TRUST_KEY" ;;
esac

slug() { printf '%s' "$1" | LC_ALL=C tr 'A-Z' 'a-z' | LC_ALL=C sed -E 's/[^a-z0-9]+/-/g; s/^-+//; s/-+$//'; }
SLUGS=()
declare -A SEEN=()
for name in "${NAMES[@]}"; do
  case "$name" in *[[:cntrl:]]*) die "the school name \"$name\" has a control character in it" ;; esac
  s="$(slug "$name")"
  [ -n "$s" ] || die "the school name \"$name\" has no letter or digit to make a bucket name of"
  [ "$s" != "$TRUST_KEY" ] || die "the school name \"$name\" would take the trust's file $TRUST_KEY.env; give the school another name"
  [ ${#s} -le 56 ] || die "the school name \"$name\" makes a bucket name longer than 63 characters (school-$s); give a shorter one"
  [ -z "${SEEN[$s]:-}" ] || die "the schools \"${SEEN[$s]}\" and \"$name\" would share the bucket school-$s; give them names that differ in letters or digits"
  SEEN[$s]="$name"
  SLUGS+=("$s")
done

# ---------- the garage command and the cluster ----------
if [ -z "$GARAGE" ]; then
  if command -v garage >/dev/null 2>&1; then GARAGE=garage
  elif [ -x "$HOME/.cache/firesafe-garage/bin/garage" ]; then GARAGE="$HOME/.cache/firesafe-garage/bin/garage"
  else die "the garage program was not found: install Garage (https://garagehq.deuxfleurs.fr/) on this machine, or give --garage /path/to/garage"
  fi
fi
command -v "$GARAGE" >/dev/null 2>&1 || die "the garage program $GARAGE was not found: give --garage /path/to/garage"
[ -n "$CONFIG" ] || CONFIG=/etc/garage.toml
if [ -z "${GARAGE_RPC_HOST:-}" ] || [ -z "${GARAGE_RPC_SECRET:-}${GARAGE_RPC_SECRET_FILE:-}" ]; then
  [ -e "$CONFIG" ] || die "no Garage configuration at $CONFIG: give -c /path/to/garage.toml (a node's configuration), or run this on a node of the cluster"
  [ -r "$CONFIG" ] || die "cannot read the Garage configuration $CONFIG: run this as the user garage runs as (or with sudo)"
fi

G() { "$GARAGE" -c "$CONFIG" "$@"; }
ERR="$(mktemp "${TMPDIR:-/tmp}/$PROG.XXXXXX")"
STAGE=""
trap 'rm -f "$ERR" ${STAGE:+"$STAGE"}' EXIT
first_error() { grep -m1 -v '^[[:space:]]*$' "$ERR" | sed 's/^Error: //' || true; }
# garage_do WHAT ARGS...: runs garage, its output discarded; on failure, stops with WHAT and
# garage's own first line of error.
garage_do() {
  local what="$1"
  shift
  G "$@" >/dev/null 2>"$ERR" || die "$what failed: $(first_error)"
}

G status >/dev/null 2>"$ERR" ||
  die "cannot reach the Garage cluster with $CONFIG ($(first_error)): check that the node is running and that this is its configuration (or give -c FILE)"

# The S3 endpoint and region the schools use, from the node's configuration unless given.
s3_setting() { # s3_setting KEY: KEY's value in the [s3_api] section of the configuration
  [ -r "$CONFIG" ] || return 0
  awk -v key="$1" '
    /^[[:space:]]*\[/ { section = $0; gsub(/[[:space:]\[\]]/, "", section); next }
    section == "s3_api" && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
      sub(/^[^=]*=[[:space:]]*/, ""); sub(/[[:space:]]*(#.*)?$/, ""); gsub(/^"|"$/, ""); print; exit
    }' "$CONFIG"
}
if [ -z "$ENDPOINT" ]; then
  bind="$(s3_setting api_bind_addr)"
  case "$bind" in
    "") die "no [s3_api] api_bind_addr in $CONFIG: give --endpoint URL, the address the schools reach the cluster's S3 API at" ;;
    0.0.0.0:*|"[::]:"*|/*)
      die "the cluster's S3 API listens on $bind, which is no address a school can use: give --endpoint URL (e.g. https://s3.trust.example)" ;;
    *) ENDPOINT="http://$bind" ;;
  esac
fi
case "$ENDPOINT" in
  http://*|https://*) ENDPOINT="${ENDPOINT%/}" ;;
  *) usage_error "--endpoint must be a URL starting http:// or https://, not $ENDPOINT" ;;
esac
[ -n "$REGION" ] || REGION="$(s3_setting s3_region)"
[ -n "$REGION" ] || REGION=garage

# ---------- buckets and keys ----------
bucket_id() { # bucket_id NAME: the bucket's ID, empty when there is no such bucket
  local info
  if info="$(G bucket info "$1" 2>"$ERR")"; then
    printf '%s\n' "$info" | sed -n 's/^Bucket:[[:space:]]*\([0-9a-f]*\)$/\1/p'
  elif ! grep -q 'NoSuchBucket' "$ERR"; then
    die "looking for the bucket $1 failed: $(first_error)"
  fi
}
key_id() { # key_id NAME: the access key ID of the key named NAME, empty when there is none
  if G key info --key-id "$1" 2>"$ERR" || grep -q 'NoSuchAccessKey' "$ERR"; then
    :
  elif grep -q 'matching keys' "$ERR"; then
    die "several keys are named $1 ($(first_error)): see garage key list, and delete or rename all but one (garage key rename ID NEW-NAME)"
  else
    die "looking for the key $1 failed: $(first_error)"
  fi
}
ensure_bucket() { # ensure_bucket NAME: prints its ID
  local id
  id="$(bucket_id "$1")"
  if [ -z "$id" ]; then
    garage_do "creating the bucket $1" bucket create "$1"
    id="$(bucket_id "$1")"
    [ -n "$id" ] || die "the bucket $1 is not there after creating it"
    log "bucket $1: created"
  fi
  echo "$id"
}
ensure_key() { # ensure_key NAME: prints its access key ID
  local id
  id="$(key_id "$1")"
  if [ -z "$id" ]; then
    garage_do "creating the key $1" key create "$1"
    id="$(key_id "$1")"
    [ -n "$id" ] || die "the key $1 is not there after creating it"
    log "key $1: created"
  fi
  echo "$id"
}
# perm Allow|Deny BUCKET-ID KEY-ID READ WRITE OWNER WHAT: gives (Allow) or takes away (Deny) the
# permissions marked true. By IDs through the admin API: `garage bucket allow` would first list
# everything the key may use, which for the trust's key grows with every school.
perm() {
  garage_do "$7" json-api "${1}BucketKey" \
    "{\"bucketId\":\"$2\",\"accessKeyId\":\"$3\",\"permissions\":{\"read\":$4,\"write\":$5,\"owner\":$6}}"
}
secret_of() { G key info --secret-key "$1" 2>"$ERR" || die "reading the secret of the key $1 failed: $(first_error)"; }
# The IDs of the buckets a key has any permission on, and whether it may write to any.
key_json() { G json-api GetKeyInfo "{\"id\":\"$1\"}" 2>"$ERR" || die "reading the key $1 failed: $(first_error)"; }
key_buckets() { local j; j="$(key_json "$1")" || exit 1; grep -o '"id": *"[0-9a-f]\{64\}"' <<<"$j" | grep -o '[0-9a-f]\{64\}' || true; }
key_writes() { local j; j="$(key_json "$1")" || exit 1; grep -q '"\(write\|owner\)": *true' <<<"$j"; }

# ---------- the files ----------
[ -d "$OUT" ] || { mkdir -p "$OUT" && chmod 700 "$OUT"; } || die "cannot make the directory $OUT"
# put FILE TEXT: FILE holds TEXT (mode 0600); rewritten only when TEXT differs.
put() {
  if [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; then
    chmod 600 "$1"
    return
  fi
  STAGE="$(mktemp "$OUT/.$PROG.XXXXXX")"
  printf '%s\n' "$2" >"$STAGE"
  chmod 600 "$STAGE"
  mv -f "$STAGE" "$1"
  STAGE=""
}
toml_string() { local s="${1//\\/\\\\}"; printf '"%s"' "${s//\"/\\\"}"; }
env_file() { # env_file DESCRIPTION KEY-ID SECRET
  echo "# $1"
  echo "# Made by scripts/garage-schools.sh. Keep it readable by root only (mode 0600)."
  echo "AWS_ACCESS_KEY_ID=$2"
  echo "AWS_SECRET_ACCESS_KEY=$3"
  echo "AWS_ENDPOINT_URL=$ENDPOINT"
  echo "AWS_REGION=$REGION"
  case "$ENDPOINT" in http://*) echo "AWS_ALLOW_HTTP=true" ;; esac
}
cloud_toml() { # cloud_toml NAME BUCKET FILE
  echo "# $1's offsite copy: its own bucket on the trust's Garage cluster (scripts/garage-schools.sh)."
  echo "# Install at the school as targets/offsite.toml (the trust's fleet.toml knows it as offsite),"
  echo "# with $3.env as the credentials: /etc/firesafe/credentials.env, EnvironmentFile= in"
  echo "# firesafe.service. The endpoint, region and credentials come from there, never from this file."
  echo "description = $(toml_string "The trust's Garage cluster (bucket $2)")"
  echo 'kind = "s3"'
  echo 'location = "offsite"'
  echo 'medium = "object-storage"'
  echo "bucket = \"$2\""
  echo 'prefix = "firesafe"'
}

TRUST_ID="$(ensure_key "$TRUST_KEY")"
FRAGMENT="# For the trust's fleet.toml (see fleet.toml.example), read with $OUT/$TRUST_KEY.env.
# public_key: run \`firesafe beacon key --config-dir /etc/firesafe\` at the school."
for i in "${!NAMES[@]}"; do
  name="${NAMES[$i]}"
  bucket="school-${SLUGS[$i]}"
  file="${SLUGS[$i]}"
  bid="$(ensure_bucket "$bucket")"
  kid="$(ensure_key "$bucket")"
  perm Allow "$bid" "$kid" true true false "allowing the key $bucket on the bucket $bucket"
  perm Allow "$bid" "$TRUST_ID" true false false "allowing the key $TRUST_KEY to read the bucket $bucket"
  perm Deny "$bid" "$TRUST_ID" false true true "keeping the key $TRUST_KEY from writing to the bucket $bucket"
  others="$(key_buckets "$kid")"
  for other in $others; do
    [ "$other" = "$bid" ] ||
      log "WARNING: the key $bucket may also use the bucket ${other:0:16} (given by hand?): see garage key info $bucket, and garage bucket deny --read --write --owner BUCKET --key $bucket"
  done
  secret="$(secret_of "$kid")"
  put "$OUT/$file.env" "$(env_file "$name: read and write to the bucket $bucket on the trust's Garage cluster, and nothing else." \
    "$kid" "$secret")"
  put "$OUT/$file-cloud.toml" "$(cloud_toml "$name" "$bucket" "$file")"
  FRAGMENT+="

[[school]]
name = $(toml_string "$name")
public_key = \"FILL IN from \`firesafe beacon key\`\"
[school.targets.offsite]
kind = \"s3\"
bucket = \"$bucket\"
prefix = \"firesafe\""
  log "$name: bucket $bucket, key $bucket, files $OUT/$file.env and $OUT/$file-cloud.toml"
done
writes=false
key_writes "$TRUST_ID" && writes=true
if $writes; then
  log "WARNING: the key $TRUST_KEY may write to some bucket (given by hand?): see garage key info $TRUST_KEY"
fi
secret="$(secret_of "$TRUST_ID")"
put "$OUT/$TRUST_KEY.env" "$(env_file "The trust: read-only access to every school's bucket on the Garage cluster (for firesafe fleet status)." \
  "$TRUST_ID" "$secret")"
log "$TRUST_KEY: may read the bucket(s) above, and write to none; file $OUT/$TRUST_KEY.env"
echo "$FRAGMENT"
