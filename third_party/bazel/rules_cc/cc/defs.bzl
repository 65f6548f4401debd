# Offline stand-in for @rules_cc: re-exports Bazel 4.2.3's native C/C++ rules,
# which @bazel_tools//tools/cpp loads from here.
cc_binary = native.cc_binary
cc_library = native.cc_library
cc_test = native.cc_test
cc_toolchain = native.cc_toolchain
cc_toolchain_suite = native.cc_toolchain_suite
