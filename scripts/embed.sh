#!/bin/sh
# embed.sh SYMBOL FILE -- print a C file defining `const char SYMBOL[]` with
# FILE's bytes (NUL-terminated) and `const size_t SYMBOL_len`.  Uses only od
# and sed so a fresh machine needs nothing extra (no xxd).
set -eu
sym=$1
file=$2
echo "/* Generated from $file by scripts/embed.sh; do not edit. */"
echo "#include <stddef.h>"
echo "const char $sym[] = {"
od -An -v -tx1 "$file" | sed -e 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g' -e 's/^/    /'
echo "    0x00};"
echo "const size_t ${sym}_len = sizeof $sym - 1;"
