#!/bin/sh
# Builds one differential test program: compiles SRC to OBJ (which the
# coverage check disassembles) and links it statically into ELF.
# usage: build_prog.sh CC SRC OBJ ELF [CFLAGS...]
set -e
cc=$1
src=$2
obj=$3
elf=$4
shift 4
"$cc" "$@" -c "$src" -o "$obj"
"$cc" "$@" "$obj" -o "$elf" -lm
