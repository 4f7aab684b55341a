# Sourced by the device scripts that build one target from two source trees (an older one and
# this one) to compare them: one way to configure and build, one failure message.
#
#   source tools/device/build_tree.bash
#   build_tree SOURCE_DIR BUILD_DIR NAME "TARGET [TARGET...]" [CMAKE_ARGS...] || exit 1
#
# Configures SOURCE_DIR into BUILD_DIR (Ninja, Release, plus CMAKE_ARGS) and builds TARGET with
# every core (JOBS=N: N jobs); logs go to $logs/NAME-configure.log and $logs/NAME-build.log ($logs must be set).
# On failure prints the logs' ends and "SCRIPT: building NAME (SOURCE_DIR) FAILED", returns 1.
build_tree() {
  local source_dir="$1" build_dir="$2" name="$3" target="$4"
  shift 4
  # Another tree (an older one, made with git archive) finds the headers the GPU machine lacks
  # where this tree has them.
  [ "$(realpath "$source_dir")" = "$(realpath .)" ] || share_deps_with "$source_dir"
  if ! { cmake -S "$source_dir" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" \
           > "$logs/$name-configure.log" 2>&1 &&
         cmake --build "$build_dir" -j "${JOBS:-$(nproc)}" --target $target \
           > "$logs/$name-build.log" 2>&1; }; then
    tail -n 20 "$logs/$name-configure.log" "$logs/$name-build.log" 2>/dev/null
    echo "$(basename "$0"): building $name ($source_dir) FAILED"
    return 1
  fi
}

# The one argument of a before/after script: an older source tree (made with git archive) that
# holds a CMakeLists.txt. Sets old_src; otherwise prints the usage or the fault and exits 2.
require_old_tree() {
  local script
  script="$(basename "$0")"
  [ $# -eq 1 ] || { echo "usage: $script OLD_SOURCE_TREE"; exit 2; }
  [ -f "$1/CMakeLists.txt" ] || {
    echo "$script: $1 has no CMakeLists.txt (make it with git archive)"
    exit 2
  }
  old_src="$1"
}

# An old tree finds the headers unpacked under this tree's build/deps (xxhash and the like, on a
# machine without them installed) through a link of its own; build_tree makes it.
share_deps_with() {
  if [ -d build/deps ] && [ ! -e "$1/build/deps" ]; then
    mkdir -p "$1/build" && ln -s "$(realpath build/deps)" "$1/build/deps"
  fi
}
