#!/usr/bin/env bash
# Downloads the Hutter Prize enwik8.zip to data/enwik8.zip (where the network allows) and
# checks it: 36,445,475 bytes, sha256 below; its one member `enwik8` is 100,000,000 bytes
# with md5 a1fa5ffddb56f4953e226637dabbb36a (checked when unzip is installed).
# reformer reads the zip as it is; nothing is unpacked to disk.
set -euo pipefail
cd "$(dirname "$0")/.."
url=https://mattmahoney.net/dc/enwik8.zip
out=data/enwik8.zip
size=36445475
sha=547994d9980ebed1288380d652999f38a14fe291a6247c157c3d33d4932534bc
mkdir -p data
if [ ! -f "$out" ]; then
    curl -fSL --retry 3 -o "$out.part" "$url" || { echo "get-enwik8: download from $url failed" >&2; rm -f "$out.part"; exit 1; }
    mv "$out.part" "$out"
fi
got=$(stat -c %s "$out")
[ "$got" = "$size" ] || { echo "get-enwik8: $out is $got bytes, expected $size" >&2; exit 1; }
echo "$sha  $out" | sha256sum -c --quiet - || { echo "get-enwik8: $out sha256 mismatch" >&2; exit 1; }
if command -v unzip >/dev/null; then
    md5=$(unzip -p "$out" enwik8 | md5sum | cut -d' ' -f1)
    [ "$md5" = a1fa5ffddb56f4953e226637dabbb36a ] || { echo "get-enwik8: member md5 $md5 is wrong" >&2; exit 1; }
fi
echo "get-enwik8: $out is the 36,445,475-byte enwik8.zip; train with: ./reformer train configs/enwik8-cpu.json"
