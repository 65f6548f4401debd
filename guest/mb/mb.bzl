"""Multiboot test kernels: freestanding 32-bit ELF images (guest/mb/mb.h).

Built by a genrule calling gcc, not by cc_binary: the C toolchain links
every binary with -lstdc++ and -lm, which have no 32-bit versions here.
The flags are those of //guest:guest.bzl for 32-bit code: no SSE or x87
(the emulator at CPL 0 lacks them), no instrumentation, no C library (the
library brings the few functions gcc calls, 64-bit division included).
"""

MB_FLAGS = " ".join([
    "-m32",
    "-march=i686",
    "-std=gnu11",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-ffreestanding",
    "-fno-builtin",
    "-fno-pic",
    "-fno-pie",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-fcf-protection=none",
    "-mgeneral-regs-only",
    "-O2",
    "-g",
    "-nostdlib",
    "-static",
    "-no-pie",
    "-Wl,--build-id=none",
    "-Wl,-z,norelro",
    "-Wl,-z,noexecstack",
    "-I.",
])

MB_LIB = [
    "//guest/mb:isr.S",
    "//guest/mb:mb.c",
    "//guest/mb:start.S",
]

def mb_kernel(name, srcs, hdrs = [], aout = False, **kwargs):
    """A multiboot kernel at 1 MiB: srcs define mb_main() (other C files
    may come along, with the headers they include in hdrs). With aout, its
    header carries the a.out kludge and `name + ".bin"` is the flat image."""
    flags = MB_FLAGS + (" -DMB_AOUT" if aout else "")
    inputs = srcs + MB_LIB
    native.genrule(
        name = name + "_build",
        srcs = inputs + hdrs + ["//guest:port_io.h", "//guest/mb:mb.h", "//guest/mb:mb.lds"],
        outs = [name],
        cmd = "gcc " + flags + " -T $(location //guest/mb:mb.lds) -o $@ " +
              " ".join(["$(location " + s + ")" for s in inputs]),
        **kwargs
    )
    if aout:
        native.genrule(
            name = name + "_flat",
            srcs = [":" + name],
            outs = [name + ".bin"],
            cmd = "objcopy -O binary $(location :" + name + ") $@",
            **kwargs
        )
