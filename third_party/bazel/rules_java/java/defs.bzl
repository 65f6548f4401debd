# Offline stand-in for @rules_java: only what Bazel's default Java toolchain
# registration loads, even in a C-only build.
java_import = native.java_import
java_runtime = native.java_runtime
java_toolchain = native.java_toolchain
