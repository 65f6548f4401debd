"""A libFuzzer target NAME: the binary NAME_fuzzer, built only with
--config=fuzz (Debian's clang, with ASan and UBSan), so it is tagged manual
and left out of //...; and NAME, which builds NAME_fuzzer so and runs it
(fuzz/run.sh), for `bazel run //fuzz:NAME -- -max_total_time=N`."""

def vmm_fuzz(name, srcs, deps):
    native.cc_binary(
        name = name + "_fuzzer",
        srcs = srcs,
        deps = deps,
        linkopts = ["-fsanitize=fuzzer"],
        tags = ["manual"],
        testonly = True,
    )
    native.sh_binary(
        name = name,
        srcs = ["run.sh"],
        args = [name],
        tags = ["manual"],
    )
