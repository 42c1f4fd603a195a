#!/usr/bin/env bash
# Regenerates the example images in images/ (new random keys every time):
#   blank.img                  an encrypted 512 KiB image with an empty store and room for
#                              one keyslot only (kept small; `create` adds a spare by default); key: blank.key
#   secureboot.img             512 KiB, enrolled with fresh test keys (PK, KEK, db) and
#                              Microsoft's keys, in user mode; key: secureboot.key;
#                              test keys (certificates and private keys): secureboot-keys/
# Usage: Scripts/make-example-images.sh [PATH-TO-varstore]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
varstore=${1:-}
if [ -z "$varstore" ]; then
    swift build --package-path "$root" -q
    varstore="$root/.build/debug/varstore"
fi
cd "$root/images"
rm -rf blank.img blank.key secureboot.img secureboot.key secureboot-keys
head -c 64 /dev/urandom > blank.key
"$varstore" create blank.img --size 512K --keyslots 1 --key-file blank.key
head -c 64 /dev/urandom > secureboot.key
"$varstore" create secureboot.img --size 512K --keyslots 1 --key-file secureboot.key
"$varstore" enroll secureboot.img --key-file secureboot.key --microsoft --test-keys secureboot-keys --secure-boot
"$varstore" list secureboot.img --key-file secureboot.key
