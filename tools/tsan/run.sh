#!/usr/bin/env bash
# --run_under of every test under --config=tsan: runs it with
# criterion_arena.so preloaded, so that Criterion's runner can map its
# sandbox's arena where ThreadSanitizer allows (criterion_arena.c says
# why). Programs without Criterion do not notice it.
here=$(cd "$(dirname "$0")" && pwd)
shim=$here/criterion_arena.so
[ -f "$shim" ] || shim=${RUNFILES_DIR:-$0.runfiles}/vmm/tools/tsan/criterion_arena.so
export LD_PRELOAD=$shim${LD_PRELOAD:+:$LD_PRELOAD}
exec "$@"
