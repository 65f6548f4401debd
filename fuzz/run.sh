#!/usr/bin/env bash
# `bazel run //fuzz:NAME -- [libFuzzer options] [CORPUS ...]`: builds the
# libFuzzer binary //fuzz:NAME_fuzzer with --config=fuzz (Debian's clang;
# Bazel 4 cannot switch compilers for one target) and runs it from the
# repository's root, so that relative paths name files there. Given no
# corpus folder, it fuzzes into a new scratch folder beside fuzz/corpus/NAME
# (read, not changed) and says where the new inputs are. `bazel run` has
# released Bazel's lock by now, so the build below does not wait for it.
set -euo pipefail
name=$1
shift
cd "${BUILD_WORKSPACE_DIRECTORY:?run me with bazel run //fuzz:$name}"
common=(--color=no --curses=no --config=fuzz)
# gold warns of each ASan symbol: the build's output only when it fails.
log=$(mktemp)
if ! bazel build "${common[@]}" "//fuzz:${name}_fuzzer" >"$log" 2>&1; then
    grep -v "Cannot export local symbol" "$log" >&2
    rm -f "$log"
    exit 1
fi
rm -f "$log"
bin="$(bazel info "${common[@]}" bazel-bin 2>/dev/null)/fuzz/${name}_fuzzer"
for arg in "$@"; do
    if [ "${arg#-}" = "$arg" ]; then
        exec "$bin" "$@"
    fi
done
scratch=$(mktemp -d "/tmp/fuzz-$name-XXXXXX")
echo "fuzz/run.sh: new inputs go to $scratch; merge them with" \
    "$bin -merge=1 fuzz/corpus/$name $scratch" >&2
exec "$bin" "$@" "$scratch" "fuzz/corpus/$name"
