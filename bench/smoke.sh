# What the benchmarks' smoke tests share, sourced by each: run the benchmark
# with the test's arguments and check that every row it must print is there.
# Targets are not judged: figures from a hundred operations on a shared
# machine mean nothing.

# Skips the test (exit 0) where /dev/kvm is absent or not usable.
smoke_need_kvm() {
    if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
        echo "SKIP: /dev/kvm is absent or not usable here; $1 needs KVM"
        exit 0
    fi
}

# Runs BENCH ARGS..., shows what it printed and keeps it in $out; fails the
# test if it exits non-zero.
smoke_run() {
    local bench=$1 status
    shift
    out=$("$bench" "$@" 2>&1)
    status=$?
    echo "$out"
    if [ "$status" -ne 0 ]; then
        echo "FAIL: $bench exited with $status"
        exit 1
    fi
}

# Fails the test unless each ROW has FIGURES (an extended regex) on exactly
# two lines of $out: the busy pass and the idle one.
smoke_rows_twice() {
    local figures=$1 row n
    shift
    for row in "$@"; do
        n=$(grep -F "  $row " <<<"$out" | grep -cE "$figures")
        if [ "$n" -ne 2 ]; then
            echo "FAIL: '$row' has figures on $n lines, expected 2 (busy and idle)"
            exit 1
        fi
    done
}

# Fails the test unless LINE (an extended regex) matches exactly two lines
# of $out; WHAT names it.
smoke_line_twice() {
    local n
    n=$(grep -cE "$1" <<<"$out")
    if [ "$n" -ne 2 ]; then
        echo "FAIL: $2 appears $n times, expected 2"
        exit 1
    fi
}
