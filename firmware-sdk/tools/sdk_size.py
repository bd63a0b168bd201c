#!/usr/bin/env python3
"""Code size, static data, context size and worst-case stack of the firmware
SDK on Cortex-M, checked against the targets of the SDK README.

  sdk_size.py --build DIR [--cc arm-none-eabi-gcc] [--host-cc cc] [--check]

For each CPU (cortex-m0plus, cortex-m4) every src/*.c is compiled with
  -std=c99 -Os -mthumb -mcpu=CPU -ffunction-sections -fdata-sections
  -fstack-usage -fcallgraph-info=su
and linked with --gc-sections, keeping every external (ddns_*) function of
the linked files as a root (the public ones, and ddns__request_layout(),
which the header's inline functions call), three times:
  - "with built-in crypto": the core (ddns_request.c, ddns_response.c,
    ddns_next.c) and ddns_sha256.c (SHA-256, HMAC-SHA256 and
    ddns_request_build(), which signs with them);
  - "without built-in crypto": the core only; the platform signs the
    string to sign (ddns_request_string_to_sign/_build_presigned,
    _authorization_presigned, _body);
  - "everything": the core, the crypto and the optional modules
    (ddns_check.c, ddns_http.c, ddns_credentials.c, ddns_error.c), for
    information: firmware links only the optional modules it calls.

Code size is the sum of the .text and .rodata input sections the linker
kept, per object, read from the link map. memcpy, memset, memmove and
memcmp are the platform's (<string.h>) and not counted; any libgcc helper
the code pulls in is linked from libgcc and counted in its own row.
.data and .bss are summed the same way. The sizes of the structures the
caller owns come from a probe object (sizeof as array lengths, read back
with nm), for both CPUs and the host.

Worst-case stack is computed over the call graph: each function's frame
comes from -fstack-usage (through -fcallgraph-info=su, which also gives the
call edges), and the deepest use of a public function is its own frame plus
the deepest use among its callees. The SDK has no recursion and no calls
through function pointers (the script fails if it finds either, or a frame
that is not static). Calls to memcpy/memset/memcmp/memmove and libgcc
helpers are counted with EXTERNAL_FRAME bytes each.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.dirname(HERE)
CPUS = ["cortex-m0plus", "cortex-m4"]
CORE = ("ddns_request.c", "ddns_response.c", "ddns_next.c")
CRYPTO = "ddns_sha256.c"
EXTERNAL_FRAME = 32          # allowance for a libc/libgcc leaf function
LIBC = ("memcpy", "memset", "memcmp", "memmove")

TARGETS = {                  # bytes
    "code_with": 3072,
    "code_without": 1792,       # 1536 before the peer/moved protocol (SDK 3.3)
    "data_bss": 0,
    "context": 128,
    "stack_with": 512,
    "stack_without": 256,
}

STRING_H = """/* <string.h> for measuring: the SDK uses only these. */
#ifndef DDNS_SIZE_STRING_H
#define DDNS_SIZE_STRING_H
#include <stddef.h>
void *memcpy(void *, const void *, size_t);
void *memmove(void *, const void *, size_t);
void *memset(void *, int, size_t);
int memcmp(const void *, const void *, size_t);
#endif
"""

# Structures the caller owns. The context is the state kept across
# attempts; the others live only during one call sequence.
STRUCTS = [
    ("ddns_state_t", "context kept across attempts"),
    ("ddns_options_t", "timing rules of ddns_next()"),
    ("ddns_request_t", "request inputs"),
    ("ddns_response_t", "parsed answer"),
    ("ddns_http_response_t", "HTTP framing"),
    ("ddns_sha256_t", "SHA-256 context (built-in crypto)"),
]


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit("sdk_size: command failed: %s\n%s%s" % (" ".join(cmd), p.stdout, p.stderr))
    return p.stdout


def compile_cpu(cc, cpu, srcs, out_dir, inc_dir):
    os.makedirs(out_dir, exist_ok=True)
    objs = {}
    for src in srcs:
        base = os.path.splitext(os.path.basename(src))[0]
        obj = os.path.join(out_dir, base + ".o")
        run([cc, "-std=c99", "-Os", "-mthumb", "-mcpu=" + cpu, "-ffunction-sections",
             "-fdata-sections", "-fstack-usage", "-fcallgraph-info=su",
             "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Werror",
             "-I", os.path.join(SDK, "include"), "-isystem", inc_dir,
             "-c", src, "-o", obj], cwd=out_dir)
        objs[os.path.basename(src)] = obj
    return objs


def public_functions(objs, nm):
    names = []
    for obj in objs:
        for line in run([nm, "-g", "--defined-only", obj]).splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "T" and parts[2].startswith("ddns_"):
                names.append(parts[2])
    return sorted(set(names))


def link(cc, cpu, objs, roots, out):
    cmd = [cc, "-mthumb", "-mcpu=" + cpu, "-nostdlib", "-Wl,--gc-sections",
           "-Wl,-Map=" + out + ".map", "-Wl,--entry=" + roots[0], "-o", out]
    cmd += ["-Wl,--undefined=" + r for r in roots]
    cmd += ["-Wl,--defsym=%s=0" % f for f in LIBC]
    cmd += objs + ["-lgcc"]
    run(cmd)
    return parse_map(out + ".map")


def parse_map(path):
    """Sizes of the kept input sections per object: {obj: {"code": n, "data": n}}."""
    sizes = {}
    with open(path) as f:
        text = f.read()
    start = text.find("Linker script and memory map")
    lines = text[start:].splitlines()
    pending = None
    for line in lines:
        m = re.match(r"^ (\.[\w.$]+)\s*$", line)
        if m:
            pending = m.group(1)
            continue
        m = re.match(r"^ (\.[\w.$]+)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)$", line)
        if not m:
            pending = None if not line.startswith("  ") else pending
            continue
        sect = m.group(1) or pending
        pending = None
        size = int(m.group(3), 16)
        obj = m.group(4)
        if sect is None or size == 0:
            continue
        if sect.startswith((".text", ".rodata")):
            kind = "code"
        elif sect.startswith((".data", ".bss", ".sdata", ".sbss")) or sect == "COMMON":
            kind = "data"
        else:
            continue
        key = os.path.basename(obj)
        if "libgcc" in obj:
            key = "libgcc"
        d = sizes.setdefault(key, {"code": 0, "data": 0})
        d[kind] += size
    return sizes


def callgraph(ci_files):
    """Frames {func: bytes} and edges {func: set(callee)} from .ci files.
    Static functions are named 'file:name'."""
    frames, edges, kinds = {}, {}, {}
    node_re = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
    edge_re = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
    for ci in ci_files:
        with open(ci) as f:
            for line in f:
                m = node_re.match(line)
                if m:
                    title, label = m.group(1), m.group(2)
                    fm = re.search(r"\\n(\d+) bytes \((\w[\w,]*)\)", label)
                    if fm:
                        frames[title] = int(fm.group(1))
                        kinds[title] = fm.group(2)
                    if "__builtin_" in label or title.startswith("__builtin_"):
                        frames.setdefault("builtin:" + title, 0)
                    continue
                m = edge_re.match(line)
                if m:
                    edges.setdefault(m.group(1), set()).add(m.group(2))
    for fn, kind in kinds.items():
        if kind != "static":
            sys.exit("sdk_size: %s has a %s stack frame" % (fn, kind))
    return frames, edges


def worst_stack(frames, edges, roots):
    memo, path_of = {}, {}

    def depth(fn, stack):
        if fn in memo:
            return memo[fn]
        if fn in stack:
            sys.exit("sdk_size: recursion through %s" % fn)
        if fn not in frames:
            if fn.split(":")[-1] in LIBC or fn.startswith("__"):
                memo[fn], path_of[fn] = EXTERNAL_FRAME, [fn]
                return EXTERNAL_FRAME
            sys.exit("sdk_size: no stack figure for %s (call through a pointer?)" % fn)
        best, best_path = 0, []
        for callee in sorted(edges.get(fn, ())):
            d = depth(callee, stack | {fn})
            if d > best:
                best, best_path = d, path_of[callee]
        memo[fn] = frames[fn] + best
        path_of[fn] = [fn] + best_path
        return memo[fn]

    worst, worst_path = 0, []
    for r in roots:
        d = depth(r, frozenset())
        if d > worst:
            worst, worst_path = d, path_of[r]
    return worst, [p.split(":")[-1] for p in worst_path]


def struct_sizes(cc, flags, out_dir, inc_dir):
    probe = os.path.join(out_dir, "sizes.c")
    with open(probe, "w") as f:
        for h in sorted(os.listdir(os.path.join(SDK, "include"))):
            f.write('#include "%s"\n' % h)
        for name, _ in STRUCTS:
            f.write("char sizeof_%s[sizeof(%s)];\n" % (name, name))
    obj = os.path.join(out_dir, "sizes.o")
    run([cc] + flags + ["-std=c99", "-fcommon", "-I", os.path.join(SDK, "include"),
                        "-isystem", inc_dir, "-c", probe, "-o", obj])
    nm = cc[:-3] + "nm" if cc.endswith("gcc") else "nm"
    if not shutil.which(nm):
        nm = "nm"
    sizes = {}
    for line in run([nm, "-S", obj]).splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3].startswith("sizeof_"):
            sizes[parts[3][len("sizeof_"):]] = int(parts[1], 16)
    return sizes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--cc", default="arm-none-eabi-gcc")
    ap.add_argument("--host-cc", default="cc")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()

    if not shutil.which(args.cc):
        sys.exit("sdk_size: %s not found (Debian package gcc-arm-none-eabi; "
                 "scripts/install-deps installs it)" % args.cc)
    nm = args.cc[:-3] + "nm"
    build = os.path.abspath(args.build)
    inc_dir = os.path.join(build, "include")
    os.makedirs(inc_dir, exist_ok=True)
    with open(os.path.join(inc_dir, "string.h"), "w") as f:
        f.write(STRING_H)
    srcs = sorted(os.path.join(SDK, "src", s) for s in os.listdir(os.path.join(SDK, "src"))
                  if s.endswith(".c"))
    names = [os.path.basename(s) for s in srcs]

    results = {}
    for cpu in CPUS:
        out_dir = os.path.join(build, cpu)
        objs = compile_cpu(args.cc, cpu, srcs, out_dir, inc_dir)
        frames, edges = callgraph([os.path.join(out_dir, os.path.splitext(n)[0] + ".ci")
                                   for n in names])
        res = {"structs": struct_sizes(args.cc, ["-mthumb", "-mcpu=" + cpu], out_dir, inc_dir)}
        for which, files in (("with", CORE + (CRYPTO,)), ("without", CORE),
                             ("all", tuple(names))):
            linked = [objs[n] for n in names if n in files]
            roots = public_functions(linked, nm)
            res[which] = link(args.cc, cpu, linked, roots,
                              os.path.join(out_dir, "sdk-%s.elf" % which))
            res["stack_" + which] = worst_stack(frames, edges, roots)
        results[cpu] = res
    host_dir = os.path.join(build, "host")
    os.makedirs(host_dir, exist_ok=True)
    host_structs = struct_sizes(args.host_cc, [], host_dir, inc_dir) \
        if shutil.which(args.host_cc) else {}

    # ---- report ----------------------------------------------------------
    version = run([args.cc, "-dumpversion"]).strip()
    print("Firmware SDK size: %s %s, -std=c99 -Os -mthumb -ffunction-sections "
          "-fdata-sections, --gc-sections; bytes of .text + .rodata kept" % (args.cc, version))
    print()
    rows = [n for n in names if n in CORE] + [CRYPTO] + \
        [n for n in names if n not in CORE and n != CRYPTO] + ["libgcc"]
    print("| file | module | %s |" % " | ".join(CPUS))
    print("|---|---|%s" % ("---:|" * len(CPUS)))
    for n in rows:
        vals = [results[c]["all"].get(n.replace(".c", ".o"), {}).get("code", 0) for c in CPUS]
        if n == "libgcc":
            vals = [results[c]["with"].get("libgcc", {}).get("code", 0) for c in CPUS]
            if not any(vals):
                continue
        kind = "core" if n in CORE else "built-in crypto" if n == CRYPTO else \
            "helpers" if n == "libgcc" else "optional"
        print("| %s | %s | %s |" % (n, kind, " | ".join(str(v) for v in vals)))

    def total(cpu, which, kind):
        return sum(v[kind] for v in results[cpu][which].values())

    failures = []

    def line(label, key, values, unit="", note=""):
        limit = TARGETS.get(key)
        ok = limit is None or all(v <= limit for v in values)
        if not ok:
            failures.append(label)
        target = "" if limit is None else "target <= %d%s%s" % (limit, unit,
                                                              "" if ok else ": MISSED")
        print("| **%s** | %s | %s |" % (label, target, " | ".join(
            "**%d**%s" % (v, note) for v in values)))

    line("core + built-in crypto", "code_with", [total(c, "with", "code") for c in CPUS])
    line("core, platform crypto", "code_without", [total(c, "without", "code") for c in CPUS])
    line("everything (all optional modules too)", None, [total(c, "all", "code") for c in CPUS])
    line(".data + .bss (everything)", "data_bss", [total(c, "all", "data") for c in CPUS])
    line("worst-case stack, core + built-in crypto", "stack_with",
         [results[c]["stack_with"][0] for c in CPUS])
    line("worst-case stack, core", "stack_without",
         [results[c]["stack_without"][0] for c in CPUS])
    line("worst-case stack, everything", None, [results[c]["stack_all"][0] for c in CPUS])
    line("context: sizeof(ddns_state_t)", "context",
         [results[c]["structs"]["ddns_state_t"] for c in CPUS])
    print()
    for cpu in CPUS:
        for which, label in (("stack_with", "core + crypto"), ("stack_without", "core"),
                             ("stack_all", "everything")):
            print("%s, %s: %d bytes along %s" % (cpu, label, results[cpu][which][0],
                                                 " -> ".join(results[cpu][which][1])))
    print()
    print("caller-owned structures (bytes): %s, and host (%s)" % (" / ".join(CPUS),
                                                                   args.host_cc))
    for name, what in STRUCTS:
        vals = [str(results[c]["structs"][name]) for c in CPUS]
        vals.append(str(host_structs.get(name, "?")))
        print("  %-22s %s  (%s)" % (name, " / ".join(vals), what))
    print()
    print("Stack: frames from -fstack-usage summed along the deepest call path "
          "(-fcallgraph-info); libc/libgcc leaves counted as %d bytes." % EXTERNAL_FRAME)
    if failures:
        print("sdk-size: targets missed: %s" % ", ".join(failures))
        if args.check:
            return 1
    else:
        print("sdk-size: all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
