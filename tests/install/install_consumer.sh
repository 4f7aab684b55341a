#!/usr/bin/env bash
# slm as a package (issue #32): configure this repository with the examples, tests, benchmarks
# and CUDA off, `cmake --install` it into a temporary prefix, then configure, build (Release) and
# run tests/install/consumer against that prefix only. Also checks what configuring a consumer
# says when it has no build type (a warning, once), asks for the cuda component this install
# lacks, or for a component slm does not have (each named, exit non-zero).
# Usage: install_consumer.sh SOURCE_DIR [CMAKE_COMMAND [GENERATOR [CXX_COMPILER]]]
set -u
src=$(cd "$1" && pwd)
cmake=${2:-cmake}
generator=${3:-Ninja}
cxx=${4:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
started=$SECONDS
say() { echo "[$((SECONDS - started)) s] $*"; }
common=(-G "$generator" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
[ -n "$cxx" ] && common+=(-DCMAKE_CXX_COMPILER="$cxx")
export CMAKE_BUILD_PARALLEL_LEVEL=2
# CMake wraps the lines of warnings and errors: look for text in a log flattened to one line.
said() { tr -s ' \n' ' ' < "$1" | grep -qF -- "$2"; }

prefix="$work/prefix"
say "configure slm (examples, tests, benchmarks, CUDA off) and install into $prefix"
"$cmake" -S "$src" -B "$work/slm-build" "${common[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DSLM_ENABLE_CUDA=OFF -DSLM_BUILD_EXAMPLES=OFF -DSLM_BUILD_TESTS=OFF \
  -DSLM_BUILD_BENCHMARKS=OFF -DCMAKE_INSTALL_PREFIX="$prefix" > "$work/slm-configure.log" 2>&1 ||
  { cat "$work/slm-configure.log"; fail "configuring slm failed"; }
"$cmake" --build "$work/slm-build" > "$work/slm-build.log" 2>&1 ||
  { cat "$work/slm-build.log"; fail "building slm failed"; }
"$cmake" --install "$work/slm-build" > "$work/slm-install.log" 2>&1 ||
  { cat "$work/slm-install.log"; fail "cmake --install failed"; }
for f in include/slm/slm.hpp include/slm/train/trainer.hpp; do
  [ -f "$prefix/$f" ] || fail "$f not installed"
done
cmake_dir=$(dirname "$(find "$prefix" -name slmConfig.cmake | head -n 1)")
[ -f "$cmake_dir/slmConfig.cmake" ] || fail "no slmConfig.cmake under $prefix"
for f in slmConfigVersion.cmake slmTargets.cmake slmDataTargets.cmake; do
  [ -f "$cmake_dir/$f" ] || fail "$f not installed beside slmConfig.cmake"
done
[ ! -f "$cmake_dir/slmCudaTargets.cmake" ] || fail "slmCudaTargets.cmake installed by a build without CUDA"
# The package must not point back into the source or build tree.
if grep -rl -e "$src/include" -e "$work/slm-build" "$cmake_dir"; then
  fail "the installed CMake files name the source or build tree"
fi
say "installed: $(cd "$prefix" && find . -type f | wc -l) files"

consumer=(-S "$src/tests/install/consumer" "${common[@]}" -DCMAKE_PREFIX_PATH="$prefix")

say "configure the consumer (Release) against the prefix"
"$cmake" "${consumer[@]}" -B "$work/consumer" -DCMAKE_BUILD_TYPE=Release > "$work/consumer-configure.log" 2>&1 ||
  { cat "$work/consumer-configure.log"; fail "configuring the consumer failed"; }
grep -q "consumer: slm .* from $cmake_dir" "$work/consumer-configure.log" ||
  { cat "$work/consumer-configure.log"; fail "the consumer did not find slm in $prefix"; }
! said "$work/consumer-configure.log" "configured without CMAKE_BUILD_TYPE" ||
  { cat "$work/consumer-configure.log"; fail "a build-type warning for a Release consumer"; }
say "build the consumer"
"$cmake" --build "$work/consumer" > "$work/consumer-build.log" 2>&1 ||
  { cat "$work/consumer-build.log"; fail "building the consumer failed"; }
say "run the consumer"
"$work/consumer/consumer" "$work/consumer-run" > "$work/consumer-run.log" 2>&1
status=$?
cat "$work/consumer-run.log"
[ "$status" -eq 0 ] || fail "the consumer exited $status"
grep -q "^consumer: validation loss" "$work/consumer-run.log" || fail "the consumer printed no loss"

# Without a build type: configures, warning once with the fix. CXXFLAGS would silence it.
say "configure a consumer without a build type"
env -u CXXFLAGS "$cmake" "${consumer[@]}" -B "$work/consumer-no-type" > "$work/no-type.log" 2>&1 ||
  { cat "$work/no-type.log"; fail "configuring a consumer without a build type failed"; }
[ "$(tr -s ' \n' ' ' < "$work/no-type.log" | grep -oF "configured without CMAKE_BUILD_TYPE" | wc -l)" -eq 1 ] ||
  { cat "$work/no-type.log"; fail "no single warning for a consumer without a build type"; }
said "$work/no-type.log" "CMake Warning" && said "$work/no-type.log" "-DCMAKE_BUILD_TYPE=Release" ||
  { cat "$work/no-type.log"; fail "the warning is not a CMake warning naming -DCMAKE_BUILD_TYPE=Release"; }

# A component this install lacks, and one slm does not have: configuring stops, naming it.
expect_refusal() {  # expect_refusal COMPONENT TEXT
  say "configure a consumer asking for component $1"
  if "$cmake" "${consumer[@]}" -B "$work/consumer-$1" -DCMAKE_BUILD_TYPE=Release \
       -DSLM_CONSUMER_COMPONENTS="data;$1" > "$work/component-$1.log" 2>&1; then
    cat "$work/component-$1.log"; fail "configuring with component $1 succeeded"
  fi
  said "$work/component-$1.log" "$2" ||
    { cat "$work/component-$1.log"; fail "component $1: no message saying '$2'"; }
}
expect_refusal cuda "component 'cuda' was not built"
expect_refusal gpu "unknown component 'gpu'; slm has: data cuda"
say "ok"
