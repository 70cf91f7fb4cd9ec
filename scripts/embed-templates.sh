#!/bin/sh
# embed-templates.sh DIR -- print a C file defining comms_builtins[], the
# table of (relative path, text) for every DIR/**/*.tmpl, sorted by path.
# Uses only find, sort, od and sed.
set -eu
dir=$1
echo "/* Generated from $dir by scripts/embed-templates.sh; do not edit. */"
echo '#include "comms/comms.h"'
n=0
files=$(cd "$dir" && find . -name '*.tmpl' | sed 's|^\./||' | LC_ALL=C sort)
for f in $files; do
    echo "static const char t$n[] = {"
    od -An -v -tx1 "$dir/$f" | sed -e 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g' -e 's/^/    /'
    echo "    0x00};"
    n=$((n + 1))
done
echo "const struct comms_builtin comms_builtins[] = {"
n=0
for f in $files; do
    echo "    {\"$f\", t$n},"
    n=$((n + 1))
done
echo "    {0, 0}};"
