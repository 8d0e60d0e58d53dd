# fleet-measure.sh: the timing table shared by benches/fleet.sh and benches/fleet-garage.sh.
# Sourced, not run. measure_fleet FS DIR RUNS SIZES ENTRY: for each size n, writes
# DIR/fleet-n.toml (the trust's key DIR/trust.key, and `ENTRY i` for schools 1..n, a function
# that prints school i's [[school]] block), times `FS fleet status` on it RUNS times with
# /usr/bin/time, and prints one markdown row: the median wall time and peak RSS, and whether
# every run said every school is OK.
measure_fleet() {
    local fs="$1" dir="$2" runs="$3" sizes="$4" entry="$5" n i w m ok
    local -a walls rss
    median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
    echo "| schools | wall (median of $runs) | peak RSS (median) | all OK |"
    echo "|---|---|---|---|"
    for n in $sizes; do
        {
            printf 'trust = "Bench Trust"\nkey_file = "%s/trust.key"\n' "$dir"
            for i in $(seq 1 "$n"); do "$entry" "$i"; done
        } >"$dir/fleet-$n.toml"
        walls=() rss=() ok=yes
        for _ in $(seq 1 "$runs"); do
            /usr/bin/time -f '%e %M' -o "$dir/time" "$fs" fleet status --fleet "$dir/fleet-$n.toml" >"$dir/out" 2>&1 || ok=no
            read -r w m <"$dir/time"
            walls+=("$w") rss+=("$m")
        done
        printf '| %s | %s s | %s MiB | %s |\n' "$n" "$(median "${walls[@]}")" \
            "$(echo "scale=1; $(median "${rss[@]}") / 1024" | bc)" "$ok"
    done
}
