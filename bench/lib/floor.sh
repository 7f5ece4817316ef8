#!/usr/bin/env bash
# S1's floor (bench/lib/scenarios-floor.mjs): floor.sh CTX OUT URL NPROC LEVEL NAME=PATH[,PATH]...
# Each layer: tar | tee >(sha256sum) | pigz | tee >(sha256sum) > blob; its upload (curl POST, then
# PUT ?digest=) starts in the background as soon as the blob is written.
set -euo pipefail
ctx=$1 out=$2 url=$3 n=$4 level=$5; shift 5
rm -rf "$out"; mkdir -p "$out"; cd "$out"
upload() { # blob digest
  local loc sep
  loc=$(curl -sSf -X POST -o /dev/null -D - "$url/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: *//p')
  case $loc in /*) loc="${url%%/v2/*}$loc";; esac
  case $loc in *\?*) sep='&';; *) sep='?';; esac
  curl -sSf -X PUT -H 'Content-Type: application/octet-stream' -T "$1" -o /dev/null "$loc${sep}digest=$2"
}
ups=()
for spec in "$@"; do
  name=${spec%%=*}; IFS=, read -ra paths <<< "${spec#*=}"
  mkfifo "$name.u" "$name.c"
  sha256sum < "$name.u" > "$name.diffid" & h1=$!
  sha256sum < "$name.c" > "$name.digest" & h2=$!
  tar -C "$ctx" --numeric-owner -cf - "${paths[@]}" | tee "$name.u" | pigz -p "$n" "-$level" -n | tee "$name.c" > "$name.blob"
  wait "$h1"; wait "$h2"
  upload "$name.blob" "sha256:$(cut -d' ' -f1 "$name.digest")" & ups+=($!)
done
for p in "${ups[@]}"; do wait "$p"; done
