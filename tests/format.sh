#!/usr/bin/env bash
# The `format` test: every C++ source is as clang-format (with the
# repository's .clang-format) writes it. Prints the files that are not and
# what would change; `clang-format -i FILE` fixes one.
set -euo pipefail
cd "$(dirname "$0")/.."
formatter=${CLANG_FORMAT:-clang-format}
mapfile -t files < <(find messages config transport actors tools examples tests/unit tests/fuzz tests/layering \
  tests/sanitize \( -name '*.cpp' -o -name '*.hpp' \) -not -path '*/node_modules/*' | sort)
[ ${#files[@]} -gt 50 ] || { echo "format: found only ${#files[@]} sources" >&2; exit 1; }
bad=0
for f in "${files[@]}"; do
  if ! out=$("$formatter" --style=file "$f" | diff -u "$f" - ); then
    echo "$out" | head -20
    bad=$((bad + 1))
  fi
done
if [ "$bad" -gt 0 ]; then
  echo "format: $bad of ${#files[@]} files differ from clang-format's output" >&2
  exit 1
fi
echo "format: ${#files[@]} files as clang-format writes them"
