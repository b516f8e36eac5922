#!/usr/bin/env bash
# Stage 3's training folder for the photo default (configs/*-photo-stage3.toml,
# docs/MODEL_CARD_PHOTO.md): every multi-instance image of tools/photo_instances.py, with part
# of the stage 1-2 data so that what those stages learnt stays in view: the pseudo-labelled
# photos, every 8th composite and every 6th procedural scene (in name order). Files are
# hard-linked, not copied.
#
#   bash tools/photo_mix.sh [PHOTO_TRAIN] [INSTANCES] [OUT]
set -euo pipefail
src=${1:-runs/data/photo-train}
inst=${2:-runs/data/photo-instances}
out=${3:-runs/data/photo-mix}
for d in "$src" "$inst"; do [ -d "$d/images" ] || { echo "no dataset at $d"; exit 1; }; done
rm -rf "$out"
mkdir -p "$out/images" "$out/masks"
add() { # dataset, stem
  cp -l "$1/images/$2.png" "$out/images/"
  cp -al "$1/masks/$2" "$out/masks/"
}
every() { # dataset, prefix, step
  local i=0
  for f in $(cd "$1/images" && ls "$2"_*.png | sort); do
    [ $((i % $3)) -eq 0 ] && add "$1" "${f%.png}"
    i=$((i + 1))
  done
}
every "$inst" inst 1
every "$src" pseudo 1
every "$src" comp 8
every "$src" train 6
echo "$(ls "$out/images" | wc -l) images, $(find "$out/masks" -name '*.png' | wc -l) masks -> $out"
