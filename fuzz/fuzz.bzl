"""A libFuzzer target: built only with --config=fuzz (Debian's clang, with
ASan and UBSan), so it is tagged manual and left out of //...."""

def vmm_fuzz(name, srcs, deps):
    native.cc_binary(
        name = name,
        srcs = srcs,
        deps = deps,
        linkopts = ["-fsanitize=fuzzer"],
        tags = ["manual"],
        testonly = True,
    )
