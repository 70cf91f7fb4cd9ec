#!/bin/sh
# embed-web.sh DIR -- print a C file defining web_assets[], the table of
# every file under DIR (any bytes), sorted by path: its URL path, bytes,
# length, content type and a strong ETag (the first 16 hex digits of the
# file's SHA-256, so the ETag changes exactly when the bytes do).
# Uses only find, sort, od, sed and sha256sum (coreutils).
set -eu
dir=$1
ctype() {
    case "$1" in
    *.html) echo "text/html; charset=utf-8" ;;
    *.css) echo "text/css; charset=utf-8" ;;
    *.js | *.mjs) echo "text/javascript; charset=utf-8" ;;
    *.json) echo "application/json" ;;
    *.svg) echo "image/svg+xml" ;;
    *.png) echo "image/png" ;;
    *.ico) echo "image/x-icon" ;;
    *.woff2) echo "font/woff2" ;;
    *.txt) echo "text/plain; charset=utf-8" ;;
    *) echo "application/octet-stream" ;;
    esac
}
echo "/* Generated from $dir by scripts/embed-web.sh; do not edit. */"
echo '#include "web/web.h"'
n=0
files=$(cd "$dir" && find . -type f ! -name '.*' | sed 's|^\./||' | LC_ALL=C sort)
for f in $files; do
    case "$f" in *[!A-Za-z0-9._/-]*) echo "embed-web.sh: unsupported file name: $f" >&2; exit 1 ;; esac
    echo "static const unsigned char a$n[] = {"
    od -An -v -tx1 "$dir/$f" | sed -e 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g' -e 's/^/    /'
    echo "    0x00};"
    n=$((n + 1))
done
echo "const struct web_asset web_assets[] = {"
n=0
for f in $files; do
    size=$(wc -c < "$dir/$f" | tr -d ' ')
    sum=$(sha256sum "$dir/$f" | cut -c1-16)
    echo "    {\"/$f\", a$n, $size, \"$(ctype "$f")\", \"\\\"$sum\\\"\"},"
    n=$((n + 1))
done
echo "    {0, 0, 0, 0, 0}};"
