#!/usr/bin/env bash
# Embedding, end to end: installs Bulwark from a build directory into a
# scratch prefix, builds examples/host against that prefix alone, checks
# that the build used nothing from the source or build tree, and runs
# embed.mjs against the host program.
#
#   embed.sh BUILD_DIR SCRATCH_DIR NODE [CMAKE] [CXX]
set -euo pipefail

build=$(cd "$1" && pwd)
scratch=$2
node=$3
cmake=${4:-cmake}
cxx=${5:-}
src=$(cd "$(dirname "$0")/../.." && pwd)

rm -rf "$scratch"
mkdir -p "$scratch"
scratch=$(cd "$scratch" && pwd)
prefix=$scratch/prefix
hostbuild=$scratch/host

echo "== cmake --install $build --prefix $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$scratch/install.log"

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
compiler=()
[[ -n $cxx ]] && compiler=(-DCMAKE_CXX_COMPILER="$cxx")
echo "== configure and build examples/host against $prefix"
"$cmake" -S "$src/examples/host" -B "$hostbuild" "${generator[@]}" "${compiler[@]}" \
  -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$scratch/configure.log"
"$cmake" --build "$hostbuild" -j 2 >"$scratch/build.log" 2>&1 || { cat "$scratch/build.log"; exit 1; }

# The package, the headers and the library must all come from the prefix.
fail() { echo "FAIL $*"; exit 1; }
found=$(sed -n 's/^Bulwark_DIR:PATH=//p' "$hostbuild/CMakeCache.txt")
[[ $found == "$prefix"/* ]] || fail "Bulwark_DIR is $found, not under $prefix"
# (The scratch directory may lie inside the build tree: mask it first.)
flags=$(grep '"command"' "$hostbuild/compile_commands.json")
grep -q -- "$prefix/include/bulwark" <<<"$flags" || fail "the compile command does not use $prefix/include/bulwark: $flags"
outside=${flags//$scratch/SCRATCH}
for tree in "$build" "$src/actors" "$src/messages" "$src/transport" "$src/config" "-I$src " "-isystem $src "; do
  if grep -q -- "$tree" <<<"$outside"; then fail "the compile command refers to $tree: $flags"; fi
done
link=$(grep -rh 'libbulwark_core' "$hostbuild"/build.ninja "$hostbuild"/CMakeFiles/host.dir/link.txt 2>/dev/null || true)
grep -q -- "$prefix/lib[^ ]*/libbulwark_core.a" <<<"$link" || fail "host does not link $prefix's libbulwark_core.a: $link"
outside=${link//$scratch/SCRATCH}
if grep -q -- "$build" <<<"$outside"; then fail "host links from the build tree: $link"; fi
echo "PASS the host was built from the installed package only"

"$node" "$src/tests/e2e/embed.mjs" --host "$hostbuild/host"
