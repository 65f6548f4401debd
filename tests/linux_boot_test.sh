#!/usr/bin/env bash
# Boots Debian's cloud kernel (a stock bzImage) with `vmm run --kernel` until
# the "Linux version" banner appears on COM1, and says how long it took.
# Manual (tagged so in tests/BUILD): it downloads the kernel package with
# apt-get the first time (cached in $VMM_LINUX_CACHE, default
# /tmp/vmm-linux-cache) and, where KVM emulates guest kernel code
# (platform.md), decompressing the kernel takes minutes.
#
#   bazel test //tests:linux_boot_test --test_output=streamed
set -u
vmm=$(realpath "$1")
timeout_s=${VMM_LINUX_TIMEOUT:-900}
cache=${VMM_LINUX_CACHE:-/tmp/vmm-linux-cache}

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "SKIP: /dev/kvm is absent or not usable here"
    exit 0
fi
mkdir -p "$cache" || exit 1
kernel=$(ls "$cache"/boot/vmlinuz-* 2>/dev/null | head -1)
if [ -z "$kernel" ]; then
    package=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    if [ -z "$package" ]; then
        echo "FAIL: apt-cache knows no linux-image-cloud-amd64 here (run apt-get update?)"
        exit 1
    fi
    echo "downloading $package into $cache"
    (cd "$cache" && apt-get download "$package") || {
        echo "FAIL: apt-get download $package"
        exit 1
    }
    dpkg-deb --fsys-tarfile "$cache/$package"_*.deb | tar -x -C "$cache" ./boot || exit 1
    kernel=$(ls "$cache"/boot/vmlinuz-* | head -1)
fi
echo "booting $kernel (timeout ${timeout_s} s)"

out=$(mktemp)
trap 'rm -f "$out" "$out.err"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null' EXIT
start=$(date +%s%N)
"$vmm" run --kernel "$kernel" --append "earlyprintk=ttyS0 console=ttyS0" --mem 512M \
    --serial "$out" 2>"$out.err" &
pid=$!
seen=false
deadline=$(($(date +%s) + timeout_s))
while [ "$(date +%s)" -lt "$deadline" ] && kill -0 "$pid" 2>/dev/null; do
    if grep -q "Linux version" "$out"; then
        seen=true
        break
    fi
    sleep 0.2
done
end=$(date +%s%N)
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pid=
ms=$(((end - start) / 1000000))
elapsed=$((ms / 1000)).$(printf '%03d' $((ms % 1000)))
if $seen; then
    grep -m1 "Linux version" "$out"
    echo "PASS: the Linux version banner on COM1 after ${elapsed} s"
    exit 0
fi
echo "FAIL: no Linux version banner after ${elapsed} s; COM1 had:"
head -c 4000 "$out"
cat "$out.err"
exit 1
