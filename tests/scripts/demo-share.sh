#!/usr/bin/env bash
# demo-share.sh DIR: creates small example shares (curriculum, admin, staff) under DIR for the
# shipped example schedule, unless they are already there. About 30 MB: documents that do not
# compress, CSV exports that do, and one curriculum folder copied into several class folders.
set -euo pipefail
DIR="${1:?usage: demo-share.sh DIR}"
if [ -d "$DIR/curriculum" ] && [ -d "$DIR/admin" ] && [ -d "$DIR/staff" ]; then
  echo "[demo-share] $DIR already holds the demo shares" >&2
  exit 0
fi
mkdir -p "$DIR/curriculum/units" "$DIR/admin/exports" "$DIR/staff"
for u in 1 2 3 4 5 6; do
  head -c $((400000 + u * 50000)) /dev/urandom > "$DIR/curriculum/units/unit-$u-slides.pptx"
  printf 'Unit %s lesson plan\n\nObjectives: fractions, decimals and percentages.\n' "$u" > "$DIR/curriculum/units/unit-$u-plan.txt"
done
for class in 7A 7B 8A 8B 9A 9B; do
  mkdir -p "$DIR/curriculum/classes/$class"
  cp -r "$DIR/curriculum/units" "$DIR/curriculum/classes/$class/"
done
for term in autumn spring summer; do
  { echo "pupil_id,surname,forename,form,attendance"
    for i in $(seq 1 4000); do echo "$i,Surname$i,Forename$i,$(( i % 6 + 7 ))X,0.9$(( i % 10 ))"; done
  } > "$DIR/admin/exports/attendance-$term.csv"
done
head -c 2000000 /dev/urandom > "$DIR/admin/budget-2026.xlsx"
head -c 800000 /dev/urandom > "$DIR/staff/staff-handbook.docx"
printf 'Staff meeting minutes\n' > "$DIR/staff/minutes – autumn term.txt"
echo "[demo-share] created demo shares in $DIR" >&2
