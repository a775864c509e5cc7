#!/bin/sh
# Build MicroPython's unix port as a 32-bit program (objects laid out as on the ESP32) with the firmware frozen
# in (bench/mp/unix_manifest.py: firmware/manifest.py and aioble from bench/mp/lib): the interpreter bench/board.py measures
# the frozen firmware's heap on. Output: build/mpy-unix/micropython.
#
#   tools/mpy-unix/build.sh [MICROPYTHON_SOURCE_DIR]
#
# Without a source directory it clones MicroPython v1.27.0 (and its micropython-lib submodule) into
# build/mpy-unix/src. Needs gcc with 32-bit support (Debian: apt-get install gcc-multilib) and make.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$ROOT/build/mpy-unix
SRC=${1:-${MICROPYTHON_SRC:-$OUT/src}}
mkdir -p "$OUT"
if [ ! -f "$SRC/py/mpconfig.h" ]; then
  git clone --depth 1 -b v1.27.0 https://github.com/micropython/micropython "$SRC"
  git -C "$SRC" submodule update --init --depth 1 lib/micropython-lib
fi
make -C "$SRC/mpy-cross" -j2 >/dev/null
# btree, ssl and ffi need submodules or libraries the firmware does not use: left out
make -C "$SRC/ports/unix" -j2 VARIANT=standard MICROPY_FORCE_32BIT=1 BUILD=build-interlock32 \
  PROG=micropython-interlock32 MICROPY_PY_BTREE=0 MICROPY_PY_SSL=0 MICROPY_SSL_AXTLS=0 MICROPY_PY_FFI=0 \
  FROZEN_MANIFEST="$ROOT/bench/mp/unix_manifest.py" >/dev/null
cp "$SRC/ports/unix/build-interlock32/micropython-interlock32" "$OUT/micropython"
echo "$OUT/micropython"
