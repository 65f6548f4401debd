"""Freestanding test guests: static ELF images the loader starts in long mode.

--config=asan adds -fsanitize=address,undefined to every compile and link.
A guest must have neither instrumentation nor sanitizer runtimes:
- compile: Bazel puts a rule's copts after --copt, so -fno-sanitize=all in
  GUEST_COPTS wins;
- link: Bazel puts --linkopt after a rule's linkopts, so the link line ends
  with -fsanitize=address,undefined whatever the rule says. -nostdlib is what
  keeps the runtimes out: gcc's link spec adds libasan and libubsan (and its
  "-static with -fsanitize=address" error) only without -nostdlib. The
  objects, compiled without sanitizers, reference none of their symbols.
"""

# -fcf-protection=none: no endbr64, which an instruction emulator may not
# know. -mgeneral-regs-only: no SSE or x87 at CPL 0 (platform.md).
GUEST_COPTS = [
    "-ffreestanding",
    "-fno-builtin",
    "-fno-pic",
    "-fno-pie",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-fcf-protection=none",
    "-fno-sanitize=all",
    "-mgeneral-regs-only",
    "-mno-red-zone",
    "-O2",
]

GUEST_LINKOPTS = [
    "-nostdlib",
    "-static",
    "-no-pie",
    "-Wl,--build-id=none",
    "-Wl,-z,norelro",
    "-Wl,-T,$(location //guest:guest.lds)",
]

def guest_library(name, srcs, hdrs = [], deps = [], **kwargs):
    """A library for guests, compiled freestanding; static only (a shared
    library of non-PIC code cannot link)."""
    native.cc_library(
        name = name,
        srcs = srcs,
        hdrs = hdrs,
        deps = deps,
        copts = GUEST_COPTS,
        linkstatic = True,
        **kwargs
    )

def guest_binary(name, srcs, deps = [], **kwargs):
    """A guest program: srcs define guest_main(vp); linked at 1 MiB."""
    native.cc_binary(
        name = name,
        srcs = srcs,
        deps = deps + ["//guest"],
        copts = GUEST_COPTS,
        linkopts = GUEST_LINKOPTS,
        additional_linker_inputs = ["//guest:guest.lds"],
        features = ["-pie"],
        **kwargs
    )

def embedded_guest(name, guest, symbol, visibility = ["//bench:__pkg__"]):
    """A cc_library `name` holding guest's bytes as the symbols `symbol`
    (const unsigned char[]) and `symbol`_len (unsigned long), for a
    benchmark that declares them itself."""
    native.genrule(
        name = name + "_src",
        srcs = [guest],
        outs = [name + ".S"],
        cmd = "(printf '%s\\n' " +
              "'    .section .rodata' " +
              "'    .globl " + symbol + ", " + symbol + "_len' " +
              "'    .balign 16' " +
              "'" + symbol + ":' && " +
              "od -An -v -tx1 $(location " + guest + ") | " +
              "sed -e 's/^ *//' -e 's/  */, 0x/g' -e 's/^/    .byte 0x/' && " +
              "printf '%s\\n' " +
              "'" + symbol + "_end:' " +
              "'    .balign 8' " +
              "'" + symbol + "_len:' " +
              "'    .quad " + symbol + "_end - " + symbol + "' " +
              "'    .section .note.GNU-stack, \"\", @progbits') > $@",
    )
    native.cc_library(
        name = name,
        srcs = [name + ".S"],
        visibility = visibility,
    )
