#!/usr/bin/env python3
"""Regenerate src/hot.ld, the list of functions tend runs while it starts,
serves a few API requests and stops, so that the linker places them together
at the front of the executable code (`make layout`, as root, needs valgrind).

Why: the kernel maps a file's pages into a process 64 KiB at a time around
each page fault ("fault-around"). Startup code scattered over the whole
binary therefore keeps the whole text resident in an idle tend (836 KiB of
it), although the idle main loop touches almost none of it. Grouped, the
code tend ever ran fits in a few windows and the rest is never mapped.

How: tend runs under valgrind's callgrind in the two shapes `make bench`
measures (`tend -- sleep` with the API on, and `tend -c` with 50
components), dumping once started, once after API requests and once at exit;
the functions of each phase are listed in the order they first ran. The code
a new child runs before execve is added by name (`tend::spawn`): callgrind
turns tend's vfork-style clone into a fork and never sees it, yet it runs in
tend's own address space.

Each name is written twice: exactly as this build has it, so that the
startup code is exactly what comes first, then as a pattern with the parts
that change from one build or toolchain to the next (legacy symbol hashes,
v0 crate disambiguators, LTO's numbered copies) replaced by `*`, which also
takes in the other instances of a generic function and so comes after. A
stale list still places most of what it names and never fails a link;
`make bench` shows what it is worth.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "src" / "hot.ld"
TARGET = ROOT / "target" / "layout"
BINARY = TARGET / "release" / "tend"
COMPONENTS = 50


def log(msg):
    print(f"layout: {msg}", file=sys.stderr, flush=True)


def ensure_valgrind():
    if shutil.which("valgrind") and shutil.which("callgrind_control"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit("layout: valgrind is missing (apt-get install valgrind, as root)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "valgrind"],
                   env=env, check=True)


def build():
    """A release build that keeps its symbol table, with the symbol names of
    `make`'s build, linked in the default
    order: valgrind 3.19 reads no symbols from a binary whose .init comes
    before its text. The layout does not change the names."""
    OUT.write_text("/* placeholder while tests/bench/layout.py runs */\n"
                   "SECTIONS { .text.hot : { *(.text.main) } } INSERT BEFORE .text;\n")
    # Flags given to `cargo rustc` leave the symbol hashes as in `make`'s build.
    subprocess.run(["cargo", "rustc", "--release", "--bin", "tend", "--target-dir", str(TARGET),
                    "--", "-C", "strip=none"], cwd=ROOT, check=True)


def ctl(sock, *args):
    subprocess.run([str(BINARY), "ctl", "--url", f"unix://{sock}", *args],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)


def answers(sock):
    return subprocess.run([str(BINARY), "ctl", "--url", f"unix://{sock}", "list"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=60).returncode == 0


def profile(d, options, command):
    """Run `tend OPTIONS --control unix://D/tend.sock COMMAND` under callgrind;
    return its dumps: started, after API requests, at exit."""
    out = d / "cg.out"
    sock = d / "tend.sock"
    vg = subprocess.Popen(["valgrind", "--tool=callgrind", "--demangle=no",
                           f"--callgrind-out-file={out}", str(BINARY), *options,
                           "--control", f"unix://{sock}", *command],
                          stdout=subprocess.DEVNULL, stderr=open(d / "valgrind.log", "w"),
                          start_new_session=True)
    deadline = time.monotonic() + 120
    while not (sock.exists() and answers(sock)):
        if vg.poll() is not None or time.monotonic() > deadline:
            vg.kill()
            sys.exit(f"layout: tend did not start under valgrind; see {d}/valgrind.log")
        time.sleep(0.5)
    time.sleep(2)  # the components start and tend settles
    subprocess.run(["callgrind_control", "--dump=started", str(vg.pid)],
                   stdout=subprocess.DEVNULL, check=True)
    for _ in range(3):
        ctl(sock, "list")
        ctl(sock, "metrics")
        ctl(sock, "get", "/programs")
        ctl(sock, "get", "/instance")
    time.sleep(2)
    subprocess.run(["callgrind_control", "--dump=api", str(vg.pid)],
                   stdout=subprocess.DEVNULL, check=True)
    os.kill(vg.pid, signal.SIGTERM)
    vg.wait(timeout=120)
    return [Path(f"{out}.1"), Path(f"{out}.2"), out]


def functions_run(dump):
    """The tend binary's functions that ran in one callgrind dump, in first-seen order."""
    files, names, seen, order = {}, {}, set(), []
    current = None
    for line in open(dump, errors="replace"):
        m = re.match(r"(c?)(ob|fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if not m:
            continue
        called, kind, ident, name = m.groups()
        table = files if kind == "ob" else names
        if name is not None:
            table[ident] = name
        if called:
            continue
        if kind == "ob":
            current = files[ident]
        elif current == str(BINARY) and names[ident] not in seen:
            seen.add(names[ident])
            order.append(names[ident])
    return order


def child_side_functions():
    """tend::spawn's functions: what a new child runs before execve (see the module doc)."""
    nm = subprocess.run(["nm", "--defined-only", str(BINARY)], capture_output=True,
                        text=True, check=True).stdout
    return [f.split()[-1] for f in nm.splitlines() if f.split()[-1].startswith("_ZN4tend5spawn")]


def pattern(symbol):
    """The symbol with what changes between builds replaced by `*`."""
    symbol = re.sub(r"\.\d+$", "", symbol)  # LTO's numbered copies: all of them go
    symbol = re.sub(r"17h[0-9a-f]{16}E$", "17h*", symbol)  # legacy mangling's hash
    return re.sub(r"Cs[0-9A-Za-z]+_", "Cs*_", symbol)  # v0 crate disambiguators


def main():
    ensure_valgrind()
    previous = OUT.read_text()
    try:
        exact, loose = profile_all()
    except BaseException:
        OUT.write_text(previous)  # a failed run leaves the layout as it was
        raise
    write(exact, loose)
    log(f"wrote {OUT.relative_to(ROOT)}: {len(exact)} functions, {len(loose)} patterns")


def profile_all():
    """Every function tend ran, startup first: the names of this build, and
    the patterns that find them in other builds."""
    build()
    phases = [[], [], []]  # started, api, exit
    with tempfile.TemporaryDirectory(prefix="tend-layout-") as tmp:
        one = Path(tmp) / "one"
        many = Path(tmp) / "many"
        one.mkdir()
        many.mkdir()
        conf = many / "tend.conf"
        conf.write_text("".join(f'component s{i} {{ command "sleep 1000"; mode respawn; }}\n'
                                for i in range(COMPONENTS)))
        for d, options, command in ((one, [], ["--", "sleep", "1000"]),
                                    (many, ["-c", str(conf)], [])):
            log(f"profiling tend {' '.join(options + command)}")
            for phase, dump in zip(phases, profile(d, options, command)):
                phase.extend(functions_run(dump))
    # `main` is the C entry point rustc writes; callgrind files it apart.
    ran = ["main"] + phases[0] + child_side_functions() + phases[1] + phases[2]
    # Names a linker script can hold unquoted; others (rare) are left in place.
    ran = [s for s in ran if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.$]*", s)]
    exact = list(dict.fromkeys(ran))
    loose = [p for p in dict.fromkeys(pattern(s) for s in ran) if p not in exact]
    return exact, loose


def write(exact, loose):
    lines = [
        "/* Generated by tests/bench/layout.py (`make layout`): the functions tend",
        "   runs while it starts, serves API requests and stops, first-run first,",
        "   placed together before the rest of the code so that an idle tend keeps",
        "   only them mapped (see build.rs). Cold copies (.text.unlikely.NAME) and",
        "   LTO's numbered copies (NAME.N) go with them. A name that no longer",
        "   exists matches nothing; the link never fails for it. */",
        "SECTIONS",
        "{",
        "  /* _init, run before main, would otherwise sit after all the code. */",
        "  .init : { KEEP (*(SORT_NONE(.init))) }",
        "  .text.hot :",
        "  {",
        "    /* The C runtime's start files: _start, frame_dummy. */",
        "    *crt1.o(.text) *crti.o(.text) *crtbegin*.o(.text) *crtend*.o(.text) *crtn.o(.text)",
    ]
    lines += ["    /* This build's names, exactly: the startup code stays together. */"]
    lines += [f"    *(.text.{p} .text.unlikely.{p})" for p in exact]
    lines += ["    /* The same names, for other builds and toolchains. */"]
    lines += [f"    *(.text.{p} .text.{p}.* .text.unlikely.{p} .text.unlikely.{p}.*)"
              for p in loose]
    lines += ["  }", "}", "INSERT BEFORE .text;", ""]
    OUT.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
