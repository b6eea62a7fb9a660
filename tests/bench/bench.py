#!/usr/bin/env python3
"""Compare tend with other process supervisors and inits, side by side.

Run by `make bench` (as root for every row).  Python 3 standard library only,
plus tests/bench/helper, a small Rust program built here with cargo: a bare
tiny_http hello server, a keep-alive HTTP load generator for TCP and UNIX
sockets, a bare spawn loop, exec timestamps and an orphan storm.

Each measurement ("row") is a function decorated with @row that returns one
Row or a list of them: one Cell per implementation, each the median of n
runs with the spread (min..max), or a reason why it was skipped.  A row may
carry bars (targets tend must meet): the table prints PASS or FAIL next to
the figure they judge, and a summary at the end.  Everything is also written
to bench/results.json.  A missing peer, or a non-root user, skips a row (or
one cell of it) with a reason: nothing here fails hard.

Peers are installed from Debian packages when missing and we are root:
tini, dumb-init, catatonit, busybox, supervisor (supervisord), wrk.

One run measures tend and its peers side by side, so ratios hold on a noisy
machine even when absolute figures move.
"""

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import xmlrpc.client
from pathlib import Path

_HERE = Path(__file__).resolve()
# tests/bench/bench.py -> the repository root (the working directory if moved).
REPO = _HERE.parents[2] if len(_HERE.parents) > 2 else Path.cwd()
RESULTS = REPO / "bench" / "results.json"
HELPER_DIR = _HERE.parent / "helper"
HELPER_TARGET = REPO / "target" / "bench-helper"

# Debian package -> the command it provides.
PEER_PACKAGES = {
    "tini": "tini",
    "dumb-init": "dumb-init",
    "catatonit": "catatonit",
    "busybox": "busybox",
    "supervisor": "supervisord",
    "wrk": "wrk",
}

# The container inits that all take "INIT -- CMD ARGS" (or "INIT CMD ARGS").
# tini gets -s so that, like tend, it is a subreaper when not PID 1.
ZERO_CONFIG_INITS = {
    "tini": lambda exe: [exe, "-s", "--"],
    "dumb-init": lambda exe: [exe],
    "catatonit": lambda exe: [exe, "--"],
}

KIB = 1024


# --------------------------------------------------------------- results


class Cell:
    """One implementation's result in one row: samples, or a skip reason."""

    def __init__(self, samples=None, skipped=None, note=""):
        self.samples = list(samples or [])
        self.skipped = skipped
        self.note = note

    @classmethod
    def skip(cls, reason):
        return cls(skipped=reason)

    def ok(self):
        return self.skipped is None and bool(self.samples)

    def median(self):
        return statistics.median(self.samples) if self.ok() else None

    def to_json(self):
        if not self.ok():
            return {"skipped": self.skipped or "no samples"}
        s = sorted(self.samples)
        out = {
            "median": statistics.median(s),
            "min": s[0],
            "max": s[-1],
            "n": len(s),
            "samples": s,
        }
        if len(s) >= 4:
            q = statistics.quantiles(s, n=4)
            out["p25"], out["p75"] = q[0], q[2]
        if self.note:
            out["note"] = self.note
        return out


class Bar:
    """A target for one cell: check(row) -> (passed, detail) or None (cannot tell)."""

    def __init__(self, subject, text, check):
        self.subject = subject
        self.text = text
        self.check = check
        self.result = None  # (passed, detail) once judged

    def judge(self, row):
        try:
            self.result = self.check(row)
        except (KeyError, TypeError, ZeroDivisionError):
            self.result = None
        return self.result

    def verdict(self):
        if self.result is None:
            return "n/a"
        return "PASS" if self.result[0] else "FAIL"

    def to_json(self):
        out = {"subject": self.subject, "bar": self.text, "verdict": self.verdict()}
        if self.result is not None:
            out["detail"] = self.result[1]
        return out


class Row:
    """A measurement compared across implementations."""

    def __init__(self, key, title, unit, lower_is_better=True):
        self.key = key
        self.title = title
        self.unit = unit
        self.lower_is_better = lower_is_better
        self.cells = {}  # implementation name -> Cell
        self.skipped = None  # reason when the whole row was skipped
        # The cell each peer's ratio is taken against (default: "tend").
        self.ref = {}
        self.bars = []

    def ref_of(self, name):
        if name in self.ref:
            return self.ref[name]
        if name.startswith("tend"):
            return None
        return "tend" if "tend" in self.cells else None

    def ratio(self, name):
        """tend's median divided by this implementation's (None if not comparable)."""
        ref = self.ref_of(name)
        if not ref or ref not in self.cells:
            return None
        a, b = self.cells[ref].median(), self.cells[name].median()
        if a is None or not b:
            return None
        return a / b

    def median(self, name):
        c = self.cells.get(name)
        return c.median() if c else None

    def to_json(self):
        out = {"key": self.key, "title": self.title, "unit": self.unit,
               "lower_is_better": self.lower_is_better}
        if self.skipped:
            out["skipped"] = self.skipped
        out["results"] = {}
        for k, c in self.cells.items():
            j = c.to_json()
            r = self.ratio(k)
            if r is not None:
                j["ratio"] = {"tend": self.ref_of(k), "tend_over_this": r}
            out["results"][k] = j
        if self.bars:
            out["bars"] = [b.to_json() for b in self.bars]
        return out


def at_most(subject, limit, text):
    """Bar: subject's median <= limit."""
    def check(r):
        v = r.median(subject)
        if v is None:
            return None
        return v <= limit, f"{fmt(v)} {r.unit} (limit {fmt(limit)})"
    return Bar(subject, text, check)


def within(subject, other, factor, text, lower_is_better=True):
    """Bar: subject within factor of other (slower by at most factor, or for
    throughput at least 1/factor of other)."""
    def check(r):
        a, b = r.median(subject), r.median(other)
        if a is None or b is None or b == 0:
            return None
        ratio = a / b
        ok = ratio <= factor if lower_is_better else ratio >= factor
        return ok, f"{fmt(a)} vs {fmt(b)} {r.unit}: {ratio:.2f}x of {other}"
    return Bar(subject, text, check)


ROWS = []


def row(fn):
    """Register a row function: fn(ctx) -> Row or [Row]."""
    ROWS.append(fn)
    return fn


# --------------------------------------------------------------- helpers


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def is_root():
    return os.geteuid() == 0


def which(cmd):
    return shutil.which(cmd, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def children_of(pid):
    """PIDs whose parent is pid (scans /proc; works without CONFIG_PROC_CHILDREN)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the command name, which is in parentheses and may hold anything.
        rest = stat[stat.rfind(b")") + 2 :].split()
        if len(rest) > 1 and int(rest[1]) == pid:
            kids.append(int(entry))
    return kids


def descendants_of(pid):
    found, todo = [], [pid]
    while todo:
        for kid in children_of(todo.pop()):
            found.append(kid)
            todo.append(kid)
    return found


def proc_status(pid):
    """/proc/PID/status as a dict of strings."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def rss_kib(pid):
    return int(proc_status(pid)["VmRSS"].split()[0])


def pss_kib(pid):
    """Proportional set size: each shared page (libc, say) divided among the
    processes that map it; what this process really costs the machine, where
    VmRSS counts every shared page in full."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise ValueError(f"no Pss for pid {pid}")


def ctx_switches(pid):
    """Voluntary + involuntary context switches summed over all threads of pid."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            st = proc_status(f"{pid}/task/{tid}")
        except OSError:
            continue  # thread ended meanwhile
        total += int(st["voluntary_ctxt_switches"]) + int(st["nonvoluntary_ctxt_switches"])
    return total


def wait_for(pred, timeout, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def tail(path, n=3):
    try:
        lines = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Supervised:
    """A supervisor started in the background, with cleanup that also kills
    the processes it started (they may live in sessions of their own)."""

    def __init__(self, argv, logfile, env=None, stdin=subprocess.DEVNULL, stdout=None):
        self.argv = argv
        self.logfile = logfile
        self.log = open(logfile, "ab")
        self.proc = subprocess.Popen(
            [str(a) for a in argv],
            stdin=stdin,
            stdout=stdout if stdout is not None else self.log,
            stderr=self.log,
            start_new_session=True,
            env=env,
        )
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def wait_children(self, n, timeout=20.0):
        """True once the supervisor has at least n children."""
        return bool(wait_for(lambda: not self.alive() or len(children_of(self.pid)) >= n,
                             timeout, 0.05)) and self.alive()

    def why_not(self, what="did not start its children in time"):
        if not self.alive():
            return f"exited with status {self.proc.returncode}: {tail(self.logfile) or 'no output'}"
        return f"{what}: {tail(self.logfile) or 'no output'}"

    def stop(self, timeout=20):
        kids = descendants_of(self.pid) if self.alive() else []
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        # Whatever the supervisor left behind (it may have died first).
        for pid in [self.pid] + kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()


def stop_all(procs):
    for p in procs:
        p.stop()


def elf_is_static(path):
    """True when the ELF file has no program interpreter (statically linked)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only
                return None
            phoff, = struct.unpack_from("<Q", head, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
            f.seek(phoff)
            for _ in range(phnum):
                ph = f.read(phentsize)
                if struct.unpack_from("<I", ph, 0)[0] == 3:  # PT_INTERP
                    return False
            return True
    except (OSError, struct.error):
        return None


def last_json(text):
    """The last line of text that parses as a JSON object."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None


# ------------------------------------------------------------ HTTP bits


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a UNIX socket (keep-alive like any HTTPConnection)."""

    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = str(path)

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s


def http_call(conn, method, path, body=None, headers=None):
    """(status, parsed JSON or raw bytes) over an open connection."""
    h = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        h.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data


def unix_call(sock, method, path, body=None, timeout=10):
    c = UnixHTTPConnection(sock, timeout)
    try:
        return http_call(c, method, path, body)
    finally:
        c.close()


def selector_query(sel):
    return "?" + urllib.parse.quote(json.dumps(sel, separators=(",", ":")), safe="")


# Components that are not running, plus c0 so that an answer of exactly
# [c0 running] means "all running" (an empty table answers [] instead).
NOT_RUNNING_OR_C0 = selector_query({"op": "or", "arg": [
    {"op": "not", "arg": {"op": "status", "arg": "running"}},
    {"op": "component", "arg": "c0"}]})
RUNNING_OR_STOPPING = selector_query({"op": "or", "arg": [
    {"op": "status", "arg": "running"}, {"op": "status", "arg": "stopping"}]})


# ------------------------------------------------------------- context


class Context:
    """What every row needs: paths, settings, and which implementations exist."""

    def __init__(self, args):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix=f"tend-bench-{os.getpid()}-"))
        # The gateway runs as nobody and must reach sockets under here.
        self.tmp.chmod(0o755)
        self.tend = Path(args.tend).resolve() if args.tend else REPO / "target" / "release" / "tend"
        self.peers = {}  # command name -> absolute path
        for cmd in list(PEER_PACKAGES.values()):
            p = which(cmd)
            if p:
                self.peers[cmd] = p
        self.helper = None
        self.helper_why = "not built yet"
        self.counter = 0

    def fresh(self, name):
        """A new empty directory under the bench temp dir (mode 0755)."""
        self.counter += 1
        d = self.tmp / f"{self.counter:03d}-{name}"
        d.mkdir()
        d.chmod(0o755)
        return d

    def tend_missing(self):
        if not self.tend.is_file():
            return f"{self.tend} not built (run make build)"
        return None

    def helper_missing(self):
        return None if self.helper else f"bench-helper: {self.helper_why}"

    def peer_missing(self, cmd):
        return None if cmd in self.peers else f"{cmd} not installed"

    def zero_config(self, name, d):
        """argv prefix that runs "CMD ARGS" under implementation name."""
        if name == "tend":
            return [str(self.tend), "--control", f"unix://{d}/tend.sock", "--"]
        exe = self.peers.get(name)
        return ZERO_CONFIG_INITS[name](exe) if exe else None

    def zero_config_impls(self):
        """("tend" or peer name, reason-if-unavailable) for the container inits."""
        out = [("tend", self.tend_missing())]
        for name in ZERO_CONFIG_INITS:
            out.append((name, self.peer_missing(name)))
        return out

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def build_helper(ctx):
    """cargo build the helper (cargo knows when nothing changed); without
    cargo, use a helper built earlier."""
    exe = HELPER_TARGET / "release" / "bench-helper"
    cargo = which(os.environ.get("CARGO") or "cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
    if Path(cargo).is_file():
        log("building tests/bench/helper")
        r = subprocess.run(
            [cargo, "build", "--release", "--quiet", "--manifest-path",
             str(HELPER_DIR / "Cargo.toml"), "--target-dir", str(HELPER_TARGET)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            out = r.stdout.strip().splitlines()
            ctx.helper_why = f"cargo build failed: {out[-1] if out else '?'}"
            log(r.stdout)
            return
    if exe.is_file():
        ctx.helper = str(exe)
    else:
        ctx.helper_why = "cargo not found and no helper built"


# ------------------------------------------------------------- peers


def install_peers(ctx):
    """apt-get install each missing peer package on its own; report the rest."""
    missing = [pkg for pkg, cmd in PEER_PACKAGES.items() if cmd not in ctx.peers]
    if not missing:
        return []
    if ctx.args.no_install:
        log(f"peers not installed (--no-install): {', '.join(missing)}")
        return missing
    if not is_root() or not which("apt-get"):
        log(f"cannot install peers (need root and apt-get): {', '.join(missing)}")
        return missing
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # Keep package scripts from starting daemons (supervisor's would).
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = False
    if not policy.exists():
        try:
            policy.write_text("#!/bin/sh\nexit 101\n")
            policy.chmod(0o755)
            made_policy = True
        except OSError:
            pass
    failed = []
    try:
        log("apt-get update")
        subprocess.run(["apt-get", "update", "-qq"], env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for pkg in missing:
            r = subprocess.run(
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", pkg],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True,
            )
            cmd = PEER_PACKAGES[pkg]
            p = which(cmd)
            if r.returncode == 0 and p:
                ctx.peers[cmd] = p
                log(f"installed {pkg}: {p}")
            else:
                last = (r.stdout or "").strip().splitlines()[-1:] or ["?"]
                log(f"could not install {pkg}: {last[0]}")
                failed.append(pkg)
    finally:
        if made_policy:
            policy.unlink(missing_ok=True)
    return failed


# ------------------------------------------------------- configurations


def tend_config(d, n, cmd="sleep 1000"):
    conf = d / "tend.conf"
    conf.write_text("".join(f'component c{i} {{ command "{cmd}"; }}\n' for i in range(n)))
    return conf


def supervisord_config(d, n, port=None, cmd="sleep 1000"):
    conf = d / "supervisord.conf"
    text = (
        "[supervisord]\n"
        "nodaemon=true\n"
        f"logfile={d}/supervisord.log\n"
        f"pidfile={d}/supervisord.pid\n"
        f"childlogdir={d}\n"
        "minfds=4096\n"
        # As root supervisord wants a user to drop to; as anyone else it refuses one.
        + ("user=root\n" if is_root() else "")
    )
    if port:
        text += (
            f"[inet_http_server]\nport=127.0.0.1:{port}\n"
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
        )
    text += "".join(
        f"[program:c{i}]\ncommand={cmd}\nstartsecs=0\nautorestart=true\n"
        f"stdout_logfile=NONE\nstderr_logfile=NONE\n"
        for i in range(n)
    )
    conf.write_text(text)
    return conf


def start_tend(ctx, d, n, inet_port=None):
    """tend -c with n `sleep 1000` components and its API on d/tend.sock
    (and on 127.0.0.1:inet_port through the gateway)."""
    argv = [ctx.tend, "-c", tend_config(d, n), "--control", f"unix://{d}/tend.sock"]
    if inet_port:
        argv += ["--control", f"inet://127.0.0.1:{inet_port}"]
    return Supervised(argv, d / "log")


def tend_all_running(sock):
    """True when every component runs (see NOT_RUNNING_OR_C0)."""
    try:
        st, body = unix_call(sock, "GET", "/programs" + NOT_RUNNING_OR_C0)
    except OSError:
        return False
    return (st == 200 and isinstance(body, list) and len(body) == 1
            and body[0].get("status") == "running")


def tend_count_running(sock):
    st, body = unix_call(sock, "GET", "/programs", timeout=30)
    if st != 200 or not isinstance(body, list):
        return -1
    return sum(1 for c in body if c.get("status") == "running" and c.get("tag", "").startswith("c"))


def start_supervisord(ctx, d, n, port):
    conf = supervisord_config(d, n, port)
    return Supervised([ctx.peers["supervisord"], "-n", "-c", conf], d / "log")


def supervisord_running(port):
    """Number of RUNNING programs, or -1 while the server is not up."""
    try:
        proxy = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/RPC2")
        return sum(1 for p in proxy.supervisor.getAllProcessInfo() if p["statename"] == "RUNNING")
    except (OSError, xmlrpc.client.Error, http.client.HTTPException):
        return -1


# -------------------------------------------------------------- rows


@row
def binary_size(ctx):
    r = Row("binary_size", "Binary size, stripped", "KiB")
    r.bars.append(at_most("tend", 1024, "≤ 1 MiB"))
    paths = [("tend", str(ctx.tend) if not ctx.tend_missing() else None)]
    for name in ("tini", "dumb-init", "catatonit", "busybox"):
        paths.append((name, ctx.peers.get(name)))
    strip = which("strip")
    d = ctx.fresh("size")
    for name, path in paths:
        if not path:
            r.cells[name] = Cell.skip(ctx.tend_missing() if name == "tend" else f"{name} not installed")
            continue
        copy = d / name
        shutil.copyfile(os.path.realpath(path), copy)
        note = ""
        if strip and subprocess.run([strip, "--strip-all", str(copy)],
                                    stderr=subprocess.DEVNULL).returncode != 0:
            note = "strip failed; "
        static = elf_is_static(copy)
        note += {True: "static", False: "dynamic", None: "?"}[static]
        r.cells[name] = Cell([copy.stat().st_size / KIB], note=note)
    return r


@row
def idle(ctx):
    """Idle RSS and context switches, every implementation idling side by side."""
    secs, big = ctx.args.idle_seconds, ctx.args.idle_components
    rss1 = Row("idle_rss", "Idle RSS (VmRSS) supervising one `sleep 1000`", "KiB")
    rss1.bars.append(at_most("tend", 2.5 * KIB, "≤ 2.5 MiB with the API on"))
    rssn = Row("idle_rss_many", f"Idle RSS (VmRSS) supervising {big} `sleep 1000`", "KiB")
    rssn.ref = {"supervisord": "tend"}
    rssn.bars.append(at_most("tend", 2.5 * KIB, "≤ 2.5 MiB with the API on"))
    csw = Row("idle_ctx_switches", f"Context switches in {secs:g} s idle", "switches")
    csw.ref = {"supervisord, " + str(big): f"tend, {big}"}
    csw.bars.append(at_most("tend", 0, "zero idle wake-ups"))
    csw.bars.append(at_most(f"tend, {big}", 0, "zero idle wake-ups"))
    rows = [rss1, rssn, csw]

    # (name, rows it feeds, argv factory, children to wait for)
    impls = []
    for name, missing in ctx.zero_config_impls():
        impls.append((name, missing, [rss1, csw], name,
                      lambda d, name=name: ctx.zero_config(name, d) + ["sleep", "1000"], 1))
    impls.append(("tend", ctx.tend_missing(), [rssn, csw], f"tend, {big}",
                  lambda d: [ctx.tend, "-c", tend_config(d, big), "--control", f"unix://{d}/tend.sock"],
                  big))
    impls.append(("supervisord", ctx.peer_missing("supervisord"), [rssn, csw], f"supervisord, {big}",
                  lambda d: [ctx.peers["supervisord"], "-n", "-c", supervisord_config(d, big)], big))
    samples = {}  # (row key, cell name) -> list
    reasons = {}
    for name, missing, feeds, csw_name, _argv, _n in impls:
        for r in feeds:
            cell = csw_name if r is csw else name
            if missing:
                r.cells[cell] = Cell.skip(missing)
            else:
                samples[(r.key, cell)] = []
    live = [i for i in impls if not i[1]]
    for run in range(ctx.args.idle_runs):
        procs = []
        try:
            for name, _m, feeds, csw_name, argv, n in live:
                d = ctx.fresh(f"idle-{name}")
                procs.append((name, feeds, csw_name, n, Supervised(argv(d), d / "log")))
            started = []
            for name, feeds, csw_name, n, s in procs:
                if s.wait_children(n, timeout=30):
                    started.append((name, feeds, csw_name, s))
                else:
                    for r in feeds:
                        reasons[(r.key, csw_name if r is csw else name)] = s.why_not()
            time.sleep(ctx.args.settle)  # let lazy setup (threads, sockets) finish
            before = {}
            for name, feeds, csw_name, s in started:
                for r in feeds:
                    if r is not csw:
                        samples[(r.key, name)].append(rss_kib(s.pid))
                before[csw_name] = ctx_switches(s.pid)
            time.sleep(secs)
            for name, feeds, csw_name, s in started:
                samples[(csw.key, csw_name)].append(ctx_switches(s.pid) - before[csw_name])
        finally:
            stop_all(p[-1] for p in procs)
    for r in rows:
        for (key, cell), got in samples.items():
            if key == r.key:
                r.cells[cell] = Cell(got) if got else Cell.skip(reasons.get((key, cell), "no samples"))
    if "tend" in csw.cells:
        csw.cells["tend"].note = "`tend -- sleep 1000`, API on"
    if f"tend, {big}" in csw.cells:
        csw.cells[f"tend, {big}"].note = f"`tend -c` with {big} components, API on"
    return rows


@row
def idle_pss(ctx):
    """Idle PSS, each implementation measured alone: run side by side, two
    copies of one binary would share (and halve) its pages."""
    big = ctx.args.idle_components
    one = Row("idle_pss", "Idle PSS (shared pages divided among their users), alone, supervising one `sleep 1000`", "KiB")
    many = Row("idle_pss_many", f"Idle PSS, alone, supervising {big} `sleep 1000`", "KiB")
    many.ref = {"supervisord": "tend"}
    impls = [(name, missing, one, lambda d, name=name: ctx.zero_config(name, d) + ["sleep", "1000"], 1)
             for name, missing in ctx.zero_config_impls()]
    impls.append(("tend", ctx.tend_missing(), many,
                  lambda d: [ctx.tend, "-c", tend_config(d, big), "--control", f"unix://{d}/tend.sock"], big))
    impls.append(("supervisord", ctx.peer_missing("supervisord"), many,
                  lambda d: [ctx.peers["supervisord"], "-n", "-c", supervisord_config(d, big)], big))
    samples = {}
    for name, missing, r, argv, n in impls:
        if missing:
            r.cells[name] = Cell.skip(missing)
            continue
        got, why = [], "no samples"
        for _ in range(ctx.args.idle_runs):
            d = ctx.fresh(f"pss-{name}")
            s = Supervised(argv(d), d / "log")
            try:
                if not s.wait_children(n, timeout=30):
                    why = s.why_not()
                    break
                time.sleep(ctx.args.settle)
                got.append(pss_kib(s.pid))
            finally:
                s.stop()
        samples[(r.key, name)] = got
        r.cells[name] = Cell(got) if got else Cell.skip(why)
    if "tend" in many.cells:
        many.cells["tend"].note = "`tend -c`, API on"
    return [one, many]


@row
def orphan_storm(ctx):
    rows = []
    sizes = [int(x) for x in str(ctx.args.orphans).split(",") if x]
    for n in sizes:
        r = Row(f"orphan_storm_{n}", f"Reap {n:,} orphaned grandchildren as PID 1 "
                f"(unshare --pid), from their release to the last reaped", "ms")
        r.bars.append(within("tend", "catatonit", 1.2, "reaping at the fork rate: within 1.2x of catatonit"))
        rows.append(r)
    unshare = which("unshare")
    why = None
    if not is_root():
        why = "needs root for unshare --pid"
    elif not unshare:
        why = "unshare not installed (util-linux)"
    elif ctx.helper_missing():
        why = ctx.helper_missing()
    if why:
        for r in rows:
            r.skipped = why
        return rows
    impls = ctx.zero_config_impls()
    reaps = {(n, name): [] for n in sizes for name, _ in impls}
    forks = {k: [] for k in reaps}
    reasons = {(n, name): missing for n in sizes for name, missing in impls if missing}
    # Round-robin over the implementations, so that a change in the
    # machine's load hits all of them alike.
    for _ in range(ctx.args.storm_runs):
        for n in sizes:
            for name, _ in impls:
                if (n, name) in reasons:
                    continue
                d = ctx.fresh(f"storm-{name}")
                argv = [unshare, "--pid", "--fork", "--mount-proc"] + ctx.zero_config(name, d) + [
                    ctx.helper, "storm", str(n), str(ctx.args.storm_limit)]
                try:
                    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, timeout=ctx.args.storm_limit + 30)
                except subprocess.TimeoutExpired:
                    reasons[(n, name)] = "timed out"
                    continue
                result = last_json(p.stdout.decode(errors="replace"))
                if not result or not result.get("ok"):
                    err = p.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
                    reasons[(n, name)] = f"exit {p.returncode}, result {result}: {err[0]}"
                    continue
                reaps[(n, name)].append(result["reap_ms"])
                forks[(n, name)].append(result["fork_ms"])
    for n, r in zip(sizes, rows):
        for name, _ in impls:
            got, f = reaps[(n, name)], forks[(n, name)]
            if (n, name) in reasons or not got:
                r.cells[name] = Cell.skip(reasons.get((n, name), "no samples"))
            else:
                r.cells[name] = Cell(got, note=f"forking them took {fmt(statistics.median(f))} ms")
    return rows


@row
def exec_latency(ctx):
    """Time from the supervisor's exec to its child's exec (launch -> stamp),
    and a whole `INIT -- true` round trip."""
    n = ctx.args.exec_runs
    r = Row("exec_to_exec", f"Exec of the supervisor to exec of its child (`INIT -- CMD`)", "ms")
    rt = Row("exec_true", f"Start, run `true`, exit (`INIT -- true`)", "ms")
    for row_ in (r, rt):
        row_.ref = {"direct (no init)": None}
    impls = []
    for name, missing in [("direct (no init)", None)] + ctx.zero_config_impls():
        if missing:
            r.cells[name] = rt.cells[name] = Cell.skip(missing)
            continue
        d = ctx.fresh("exec")
        prefix = [] if name.startswith("direct") else ctx.zero_config(name, d)
        # An init that exits 0 without running its child would look fast:
        # check first that the child runs and its status comes back.
        check = subprocess.run(prefix + ["sh", "-c", "exit 7"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        if check.returncode != 7:
            r.cells[name] = rt.cells[name] = Cell.skip(
                f"`-- sh -c 'exit 7'` exited with {check.returncode}, not 7")
            continue
        impls.append((name, prefix, d / "stamp"))
    trips = {name: [] for name, _, _ in impls}
    stamps = {name: [] for name, _, _ in impls}
    bad_trip, bad_stamp = {}, {}
    for _ in range(n):
        for name, prefix, out in impls:  # round-robin, as above
            if name not in bad_trip:
                t0 = time.perf_counter()
                p = subprocess.run(prefix + ["true"], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
                dt = time.perf_counter() - t0
                if p.returncode != 0:
                    bad_trip[name] = f"`{' '.join(prefix)} true` exited with {p.returncode}"
                else:
                    trips[name].append(dt * 1000)
            if name in bad_stamp or ctx.helper_missing():
                continue
            out.unlink(missing_ok=True)
            p = subprocess.run([ctx.helper, "launch", "--"] + prefix + [ctx.helper, "stamp", str(out)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, timeout=30)
            try:
                stamps[name].append(int(out.read_text()) / 1e6)
            except (OSError, ValueError):
                err = p.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
                bad_stamp[name] = f"no stamp (exit {p.returncode}): {err[0]}"
    for name, _, _ in impls:
        rt.cells[name] = Cell.skip(bad_trip[name]) if name in bad_trip else Cell(trips[name])
        why = bad_stamp.get(name) or ctx.helper_missing()
        r.cells[name] = Cell.skip(why) if why else Cell(stamps[name])
    if "direct (no init)" in r.cells:
        r.cells["direct (no init)"].note = "baseline: the launcher execs the child itself"
    return [r, rt]


@row
def start_stop_many(ctx):
    n = ctx.args.start_count
    start = Row("start_many", f"Start {n} `sleep 1000` respawn components until all run", "ms")
    stop = Row("stop_many", f"Stop all {n} with one request until all stopped", "ms")
    bare = "bare spawn loop"
    start.ref = {bare: "tend", "supervisord": "tend"}
    stop.ref = dict(start.ref)
    start.bars.append(within("tend", bare, 1.3, "within 1.3x of the bare spawn loop"))
    impls = {
        "tend": (ctx.tend_missing(), start_stop_tend,
                 "until GET /programs (polled every 5 ms) shows all running; stop: DELETE /programs"),
        bare: (ctx.helper_missing(), start_stop_bare,
               "spawn n, then SIGTERM n and reap them: the machine's limit"),
        "supervisord": (ctx.peer_missing("supervisord"), start_stop_supervisord,
                        "getAllProcessInfo polled every 50 ms; stop: stopAllProcesses(wait)"),
    }
    ups = {k: [] for k in impls}
    downs = {k: [] for k in impls}
    reasons = {k: v[0] for k, v in impls.items() if v[0]}
    for _ in range(ctx.args.start_runs):
        for name, (_, fn, _) in impls.items():  # round-robin, as above
            if name in reasons:
                continue
            d = ctx.fresh(f"start-{name}")
            try:
                got = fn(ctx, d, n)
            except (OSError, subprocess.TimeoutExpired, ValueError, http.client.HTTPException,
                    xmlrpc.client.Error) as e:
                got = f"{type(e).__name__}: {e}"
            if isinstance(got, str):
                reasons[name] = got
                continue
            ups[name].append(got[0])
            downs[name].append(got[1])
    for name, (_, _, note) in impls.items():
        for row_, got in ((start, ups[name]), (stop, downs[name])):
            row_.cells[name] = Cell.skip(reasons[name]) if name in reasons else Cell(got, note=note)
    return [start, stop]


def start_stop_tend(ctx, d, n):
    sock = d / "tend.sock"
    t0 = time.perf_counter()
    s = start_tend(ctx, d, n)
    try:
        ok = wait_for(lambda: not s.alive() or tend_all_running(sock), 60, 0.005)
        t_up = time.perf_counter() - t0
        if not ok or not s.alive():
            return s.why_not("not all running in 60 s")
        # Outside the timing: check the answer we relied on.
        running = tend_count_running(sock)
        if running != n:
            return f"{running} of {n} running after the poll said all"
        t1 = time.perf_counter()
        st, body = unix_call(sock, "DELETE", "/programs", timeout=60)
        if st != 200:
            return f"DELETE /programs: {st} {body}"
        done = wait_for(lambda: not s.alive() or unix_call(sock, "GET", "/programs" + RUNNING_OR_STOPPING)[1] == [],
                        60, 0.005)
        t_down = time.perf_counter() - t1
        if not done:
            return "components still running 60 s after DELETE /programs"
        return t_up * 1000, t_down * 1000
    finally:
        s.stop()


def start_stop_bare(ctx, d, n):
    t0 = time.perf_counter()
    s = Supervised([ctx.helper, "spawnloop", str(n), "sleep", "1000"], d / "log",
                   stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        line = s.proc.stdout.readline().decode()
        t_up = time.perf_counter() - t0
        if not line.startswith("ready"):
            return s.why_not("spawn loop failed")
        t1 = time.perf_counter()
        s.proc.stdin.write(b"stop\n")
        s.proc.stdin.flush()
        line = s.proc.stdout.readline().decode()
        t_down = time.perf_counter() - t1
        if not line.startswith("stopped"):
            return s.why_not("spawn loop did not stop")
        return t_up * 1000, t_down * 1000
    finally:
        s.stop()


def start_stop_supervisord(ctx, d, n):
    port = free_port()
    t0 = time.perf_counter()
    s = start_supervisord(ctx, d, n, port)
    try:
        ok = wait_for(lambda: not s.alive() or supervisord_running(port) >= n, 120, 0.05)
        t_up = time.perf_counter() - t0
        if not ok or not s.alive():
            return s.why_not("not all RUNNING in 120 s")
        proxy = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/RPC2")
        t1 = time.perf_counter()
        proxy.supervisor.stopAllProcesses(True)
        t_down = time.perf_counter() - t1
        return t_up * 1000, t_down * 1000
    finally:
        s.stop()


# ------------------------------------------------------------ API rows

WRK_REPORT = r'''
%s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d,"errors":%%d,"read_errors":%%d,"non2xx":%%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.read, e.status))
end
'''

XMLRPC_ALL = ('<?xml version="1.0"?><methodCall><methodName>supervisor.getAllProcessInfo'
              '</methodName><params></params></methodCall>')


def wrk(ctx, d, url, setup=""):
    """wrk, 2 threads, --conns keep-alive connections: dict with rps, p99_ms, errors."""
    script = d / f"wrk-{ctx.counter}.lua"
    script.write_text(WRK_REPORT % setup)
    secs = ctx.args.api_seconds
    p = subprocess.run([ctx.peers["wrk"], "-t2", f"-c{ctx.args.conns}", f"-d{secs:g}s",
                        "-s", str(script), url],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=secs + 60)
    j = last_json(p.stdout)
    if not j:
        raise ValueError(f"wrk: no report (exit {p.returncode}): {p.stderr.strip()[-200:]}")
    return {"rps": j["requests"] / (j["duration_us"] / 1e6), "p99_ms": j["p99_us"] / 1000,
            "errors": j["errors"], "non2xx": j["non2xx"]}


def loadgen(ctx, target, path="/", method="GET", body="", headers=(), agents=0, secs=None):
    """bench-helper load over TCP ("tcp", "host:port") or UNIX ("unix", path)."""
    secs = secs or ctx.args.api_seconds
    argv = [ctx.helper, "load", f"--{target[0]}", str(target[1]), "--conns", str(ctx.args.conns),
            "--duration", str(secs), "--path", path, "--method", method]
    if body:
        argv += ["--body", body]
    for h in headers:
        argv += ["--header", h]
    if agents:
        argv += ["--agents", str(agents)]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=secs + 60)
    j = last_json(p.stdout)
    if not j:
        raise ValueError(f"load: no report (exit {p.returncode}): {p.stderr.strip()[-200:]}")
    return {"rps": j["rps"], "p99_ms": j["p99_ms"], "errors": j["errors"], "non2xx": j["non2xx"],
            "last_error": j.get("last_error", "")}


class Samples:
    """rps and p99 samples of one implementation, with error counts for the note."""

    def __init__(self, note=""):
        self.rps, self.p99, self.errors, self.non2xx = [], [], 0, 0
        self.reason = None
        self.note = note

    def add(self, m):
        self.rps.append(m["rps"])
        self.p99.append(m["p99_ms"])
        self.errors += m["errors"]
        self.non2xx += m["non2xx"]

    def cells(self):
        if self.reason or not self.rps:
            c = Cell.skip(self.reason or "no samples")
            return c, c
        note = self.note
        if self.errors or self.non2xx:
            note += f"{'; ' if note else ''}{self.errors} socket errors, {self.non2xx} non-2xx"
        return Cell(self.rps, note=note), Cell(self.p99, note=note)


def measure(ctx, samples, fn, runs=None):
    for _ in range(ctx.args.api_runs if runs is None else runs):
        if samples.reason:
            return
        try:
            samples.add(fn())
        except (OSError, ValueError, KeyError, subprocess.TimeoutExpired) as e:
            samples.reason = f"{type(e).__name__}: {e}"


HELLO_BODY = '{"status":"OK","message":"hello"}'


class Server:
    """One implementation under load: how to start it, wait for it and load it."""

    def __init__(self, samples, missing=None):
        self.samples = samples
        self.proc = None
        self.load = None  # () -> measurement dict
        if missing:
            samples.reason = missing

    def ready(self):
        return not self.samples.reason and self.load is not None

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None


def start_hello(ctx, kind):
    """The bare tiny_http hello server on TCP (loaded with wrk) or UNIX (bench-helper)."""
    srv = Server(Samples(f"tiny_http 0.12, 4 workers, {len(HELLO_BODY)}-byte JSON"),
                 ctx.helper_missing() or (ctx.peer_missing("wrk") if kind == "tcp" else None))
    if srv.samples.reason:
        return srv
    d = ctx.fresh(f"hello-{kind}")
    port, sock = free_port(), d / "hello.sock"
    listen = ["--tcp", f"127.0.0.1:{port}"] if kind == "tcp" else ["--unix", str(sock)]
    srv.proc = Supervised([ctx.helper, "hello", *listen], d / "log")
    if not wait_for(lambda: port_open(port) if kind == "tcp" else sock.exists(), 10):
        srv.samples.reason = srv.proc.why_not("hello server did not listen")
    elif kind == "tcp":
        srv.load = lambda: wrk(ctx, d, f"http://127.0.0.1:{port}/")
    else:
        srv.load = lambda: loadgen(ctx, ("unix", sock))
    return srv


@row
def status_api(ctx):
    rows = []
    counts = [int(x) for x in str(ctx.args.api_components).split(",") if x]
    gw, ux = "tend, TCP via gateway (wrk)", "tend, UNIX socket (bench-helper)"
    hello_tcp, hello_unix = "tiny_http hello, TCP (wrk)", "tiny_http hello, UNIX (bench-helper)"
    sv = "supervisord XML-RPC getAllProcessInfo (wrk)"
    big = max(counts) if counts else 0
    for n in counts:
        rps = Row(f"api_rps_{n}", f"Status API throughput, {n} component{'s' if n != 1 else ''} "
                  f"({ctx.args.conns} keep-alive connections)", "req/s", lower_is_better=False)
        p99 = Row(f"api_p99_{n}", f"Status API p99 latency, {n} component{'s' if n != 1 else ''}", "ms")
        for r in (rps, p99):
            r.ref = {hello_tcp: gw, hello_unix: ux, sv: gw, ux: None, gw: None}
        if n == big:
            rps.bars.append(within(gw, hello_tcp, 0.5, "at least half of bare tiny_http (TCP)",
                                   lower_is_better=False))
            rps.bars.append(within(ux, hello_unix, 0.5, "at least half of bare tiny_http (UNIX)",
                                   lower_is_better=False))
            p99.bars.append(at_most(gw, 2.0, "p99 under 2 ms"))
            p99.bars.append(at_most(ux, 2.0, "p99 under 2 ms"))
        servers = {}
        try:
            servers[hello_tcp] = start_hello(ctx, "tcp")
            servers[hello_unix] = start_hello(ctx, "unix")
            start_tend_api(ctx, n, servers, gw, ux)
            servers[sv] = start_supervisord_api(ctx, n)
            # Round-robin over the implementations, so that a change in the
            # machine's load hits all of them alike.
            for _ in range(ctx.args.api_runs):
                for srv in servers.values():
                    if srv.ready():
                        measure(ctx, srv.samples, srv.load, runs=1)
        finally:
            for srv in servers.values():
                srv.stop()
        for name in (gw, ux, hello_tcp, hello_unix, sv):
            rps.cells[name], p99.cells[name] = servers[name].samples.cells()
        rows += [rps, p99]
    return rows


def start_tend_api(ctx, n, servers, gw, ux):
    """One tend serving both the gateway (TCP) and the UNIX socket."""
    g = Server(Samples("GET /programs; the gateway is listed too"),
               ctx.tend_missing() or ctx.helper_missing() or ctx.peer_missing("wrk"))
    u = Server(Samples("GET /programs"), ctx.tend_missing() or ctx.helper_missing())
    servers[gw], servers[ux] = g, u
    if g.samples.reason and u.samples.reason:
        return
    d = ctx.fresh(f"api-tend-{n}")
    port = free_port()
    g.proc = start_tend(ctx, d, n, inet_port=port)  # stopped through g; u shares it
    up = wait_for(lambda: not g.proc.alive() or (tend_all_running(d / "tend.sock") and port_open(port)), 30)
    if not up or not g.proc.alive():
        g.samples.reason = u.samples.reason = g.proc.why_not("API or gateway not up in 30 s")
        return
    g.load = lambda: wrk(ctx, d, f"http://127.0.0.1:{port}/programs")
    u.load = lambda: loadgen(ctx, ("unix", d / "tend.sock"), "/programs")


def start_supervisord_api(ctx, n):
    srv = Server(Samples(), ctx.peer_missing("supervisord") or ctx.peer_missing("wrk"))
    if srv.samples.reason:
        return srv
    d = ctx.fresh(f"api-supervisord-{n}")
    port = free_port()
    srv.proc = start_supervisord(ctx, d, n, port)
    if not wait_for(lambda: not srv.proc.alive() or supervisord_running(port) >= n, 60, 0.1) \
            or not srv.proc.alive():
        srv.samples.reason = srv.proc.why_not("not all RUNNING in 60 s")
        return srv
    setup = ('wrk.method = "POST"\nwrk.body = \'%s\'\n'
             'wrk.headers["Content-Type"] = "text/xml"' % XMLRPC_ALL)
    srv.load = lambda: wrk(ctx, d, f"http://127.0.0.1:{port}/RPC2", setup)
    return srv


@row
def configserver(ctx):
    agents, configs = ctx.args.agents, ctx.args.configs
    hb = Row("configserver_heartbeats", f"ConfigServer heartbeats/s, {agents:,} agents "
             f"({ctx.args.conns} keep-alive connections)", "req/s", lower_is_better=False)
    hb99 = Row("configserver_heartbeat_p99", "ConfigServer HeartBeat p99 latency", "ms")
    same = Row("configserver_getconfiglist_p99", f"ConfigServer GetConfigList p99, {configs} configs "
               f"applied to `default`, agent up to date (all SAME)", "ms")
    new = Row("configserver_getconfiglist_new_p99", f"ConfigServer GetConfigList p99, {configs} configs, "
              f"first fetch (all NEW, with content)", "ms")
    same_rps = Row("configserver_getconfiglist_rps", f"ConfigServer GetConfigList/s, {configs} configs, "
                   f"agent up to date (all SAME)", "req/s", lower_is_better=False)
    rows = [hb, hb99, same_rps, same, new]
    why = ctx.tend_missing() or ctx.helper_missing()
    if why:
        for r in rows:
            r.skipped = why
        return rows
    d = ctx.fresh("configserver")
    port = free_port()
    s = Supervised([ctx.tend, "config-server", "--listen", f"127.0.0.1:{port}", "--store", d / "store"],
                   d / "log", env=dict(os.environ, RUST_LOG="warn"))
    try:
        if not wait_for(lambda: not s.alive() or port_open(port), 10) or not s.alive():
            for r in rows:
                r.skipped = s.why_not("did not listen")
            return rows
        hb_body = ('{"request_id":"bench","agent_id":"{agent}","agent_type":"tend",'
                   '"agent_version":"0.1.0","ip":"127.0.0.1","running_status":"running",'
                   '"startup_time":1700000000}')
        versions = prepare_fleet(port, hb_body, agents, configs)
        json_ct = ["Content-Type: application/json"]
        smp = Samples("JSON bodies, agents already registered")
        measure(ctx, smp, lambda: loadgen(ctx, ("tcp", f"127.0.0.1:{port}"), "/Agent/HeartBeat", "POST",
                                          hb_body, json_ct, agents))
        hb.cells["tend"], hb99.cells["tend"] = smp.cells()
        up_to_date = json.dumps({"agent_id": "AGENT", "config_versions": versions},
                                separators=(",", ":")).replace("AGENT", "{agent}")
        for r, body in ((same, up_to_date), (new, '{"agent_id":"{agent}"}')):
            smp = Samples("JSON bodies")
            measure(ctx, smp, lambda: loadgen(ctx, ("tcp", f"127.0.0.1:{port}"), "/Agent/GetConfigList",
                                              "POST", body, json_ct, agents))
            if r is same:
                same_rps.cells["tend"], same.cells["tend"] = smp.cells()
            else:
                r.cells["tend"] = smp.cells()[1]
    finally:
        s.stop()
    return rows


def prepare_fleet(port, hb_body, agents, configs):
    """Register the agents, create the configs and apply them to `default`;
    returns {config name: version} as GetConfigList reports it."""
    def call(conn, method, path, body):
        st, answer = http_call(conn, method, path, body)
        if st != 200 or not isinstance(answer, dict) or answer.get("code") != "Accept":
            raise ValueError(f"{method} {path}: {st} {answer!r:.200}")
        return answer

    def register(ids):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for i in ids:
                call(conn, "POST", "/Agent/HeartBeat", hb_body.replace("{agent}", f"agent-{i:04d}"))
        finally:
            conn.close()

    errors = []
    def guarded(ids):
        try:
            register(ids)
        except (OSError, ValueError, http.client.HTTPException) as e:
            errors.append(e)
    threads = [threading.Thread(target=guarded, args=(range(k, agents, 4),)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise ValueError(f"registering agents: {errors[0]}")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for i in range(configs):
            name = f"cfg{i:03d}"
            call(conn, "POST", "/User/CreateConfig", {"config_detail": {
                "config_name": name, "agent_type": "tend", "description": "bench",
                "content": f'component w{i} {{ command "sleep 1000"; mode respawn; }}\n'}})
            call(conn, "PUT", "/User/ApplyConfigToAgentGroup", {"group_name": "default", "config_name": name})
        answer = call(conn, "POST", "/Agent/GetConfigList", {"agent_id": "agent-0000"})
    finally:
        conn.close()
    infos = answer.get("config_update_infos", [])
    if len(infos) != configs:
        raise ValueError(f"GetConfigList lists {len(infos)} configs, not {configs}")
    return {c["config_name"]: int(c.get("config_version", 0)) for c in infos}


# ------------------------------------------------------------ output


def fmt(v):
    if v is None:
        return "-"
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 0.1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def table(rows):
    """Rows grouped by measurement, one line per implementation."""
    lines = []
    hdr = ("implementation", "median", "spread (min..max)", "n", "tend/x", "bar", "note")
    widths = (44, 10, 20, 4, 8, 6)
    for r in rows:
        lines.append("")
        better = "lower" if r.lower_is_better else "higher"
        lines.append(f"{r.title} [{r.unit}, {better} is better]")
        if r.skipped:
            lines.append(f"  skipped: {r.skipped}")
            continue
        lines.append("  " + "".join(h.ljust(w) for h, w in zip(hdr, widths)) + hdr[-1])
        for name, c in r.cells.items():
            j = c.to_json()
            ratio = r.ratio(name)
            verdicts = [b.verdict() for b in r.bars if b.subject == name]
            bar = "/".join(verdicts)
            if "skipped" in j:
                cols = (name, "-", "", "", "", bar)
                note = f"skipped: {j['skipped']}"
            else:
                cols = (name, fmt(j["median"]), f"{fmt(j['min'])}..{fmt(j['max'])}", str(j["n"]),
                        f"{ratio:.2f}" if ratio is not None else "", bar)
                note = j.get("note", "")
            lines.append("  " + "".join(str(x).ljust(w) for x, w in zip(cols, widths)) + note)
        for b in r.bars:
            detail = f": {b.result[1]}" if b.result else ""
            lines.append(f"  bar {b.verdict()}: {b.subject} {b.text}{detail}")
    return "\n".join(lines)


def bar_summary(rows):
    lines = ["", "Bars:"]
    for r in rows:
        for b in r.bars:
            detail = f" ({b.result[1]})" if b.result else ""
            lines.append(f"  {b.verdict():4}  {r.title}: {b.subject} {b.text}{detail}")
    return "\n".join(lines)


def markdown(results):
    """A compact Markdown table of a results file (for the README)."""
    out = ["| measurement | tend (median, min..max, n) | peers (median, tend/x) | bar |",
           "|---|---|---|---|"]
    for r in results.get("rows", []):
        res = r.get("results", {})
        better = "lower" if r.get("lower_is_better", True) else "higher"
        title = f"{r['title']} [{r['unit']}, {better} better]"
        if r.get("skipped"):
            out.append(f"| {title} | skipped: {r['skipped']} | | |")
            continue

        def one(name, j, with_spread):
            if "median" not in j:
                return f"{name}: skipped"
            label = "" if name == "tend" else f"{name}: "
            if with_spread:
                return f"{label}**{fmt(j['median'])}** ({fmt(j['min'])}..{fmt(j['max'])}, {j['n']})"
            ratio = j.get("ratio", {}).get("tend_over_this")
            return f"{label}{fmt(j['median'])}" + (f" ({ratio:.2f})" if ratio is not None else "")
        tend = [one(k, v, True) for k, v in res.items() if k.startswith("tend")]
        peers = [one(k, v, False) for k, v in res.items() if not k.startswith("tend")]
        bars = [f"{b['subject'] + ' ' if b['subject'] != 'tend' else ''}{b['bar']}: **{b['verdict']}**"
                for b in r.get("bars", [])]
        out.append(f"| {title} | {'<br>'.join(tend)} | {'<br>'.join(peers)} | {'<br>'.join(bars)} |")
    return "\n".join(out)


def tend_version(ctx):
    if ctx.tend_missing():
        return None
    try:
        p = subprocess.run([str(ctx.tend), "--version"], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=5)
        return p.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def meta(ctx, missing, seconds):
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kernel": platform.release(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "root": is_root(),
        "tend": str(ctx.tend),
        "tend_version": tend_version(ctx),
        "peers": ctx.peers,
        "peers_missing": missing,
        "helper": ctx.helper or ctx.helper_missing(),
        "seconds": round(seconds, 1),
        "settings": {k: v for k, v in vars(ctx.args).items()},
    }


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tend", help="tend binary (default target/release/tend)")
    p.add_argument("--idle-runs", type=int, default=3, help="runs of the idle rows (default 3)")
    p.add_argument("--idle-seconds", type=float, default=10.0, help="idle window (default 10)")
    p.add_argument("--idle-components", type=int, default=50, help="components of the big idle run (default 50)")
    p.add_argument("--orphans", default="2000,10000", help="orphans per storm, comma-separated")
    p.add_argument("--storm-runs", type=int, default=5, help="runs per storm size (default 5)")
    p.add_argument("--storm-limit", type=float, default=60.0, help="seconds a storm may take")
    p.add_argument("--exec-runs", type=int, default=100, help="runs of the exec rows (default 100)")
    p.add_argument("--start-count", type=int, default=500, help="components to start and stop (default 500)")
    p.add_argument("--start-runs", type=int, default=3, help="runs of the start/stop rows (default 3)")
    p.add_argument("--api-components", default="1,20,50", help="component counts of the API rows")
    p.add_argument("--api-seconds", type=float, default=3.0, help="seconds per API measurement (default 3)")
    p.add_argument("--api-runs", type=int, default=3, help="runs per API figure (default 3)")
    p.add_argument("--conns", type=int, default=16, help="keep-alive connections of the load (default 16)")
    p.add_argument("--agents", type=int, default=1000, help="simulated ConfigServer agents (default 1000)")
    p.add_argument("--configs", type=int, default=100, help="configs applied to `default` (default 100)")
    p.add_argument("--settle", type=float, default=1.0, help="seconds to wait before sampling idle figures")
    p.add_argument("--only", help="comma-separated row functions to run (e.g. idle,binary_size)")
    p.add_argument("--quick", action="store_true", help="few short runs: a smoke test")
    p.add_argument("--no-install", action="store_true", help="do not apt-get install missing peers")
    p.add_argument("--json", default=str(RESULTS), help=f"results file (default {RESULTS})")
    p.add_argument("--markdown", metavar="RESULTS",
                   help="print a results file as a Markdown table (for the README) and exit")
    a = p.parse_args(argv)
    if a.quick:
        a.idle_runs, a.idle_seconds, a.exec_runs = 1, 2.0, 10
        a.orphans, a.storm_runs = "1000", 2
        a.start_count, a.start_runs = 100, 1
        a.api_components, a.api_seconds, a.api_runs = "50", 1.0, 1
        a.agents, a.configs = 100, 10
        a.settle = 0.5
    return a


def main(argv):
    args = parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text())))
        return 0
    ctx = Context(args)
    t_start = time.monotonic()
    try:
        missing = install_peers(ctx)
        build_helper(ctx)
        fns = ROWS
        if args.only:
            wanted = set(args.only.split(","))
            fns = [f for f in ROWS if f.__name__ in wanted]
            unknown = wanted - {f.__name__ for f in ROWS}
            if unknown:
                log(f"unknown rows: {', '.join(sorted(unknown))}; known: {', '.join(f.__name__ for f in ROWS)}")
                return 2
        rows = []
        for fn in fns:
            log(f"measuring {fn.__name__} ...")
            t = time.monotonic()
            try:
                got = fn(ctx)
            except Exception as e:  # one broken row must not lose the others
                got = Row(fn.__name__, fn.__name__, "")
                got.skipped = f"error: {type(e).__name__}: {e}"
            log(f"  {time.monotonic() - t:.1f} s")
            rows.extend(got if isinstance(got, list) else [got])
        for r in rows:
            for b in r.bars:
                b.judge(r)
        seconds = time.monotonic() - t_start
        print(f"tend benchmarks ({'root' if is_root() else 'not root'}, "
              f"{os.cpu_count()} CPUs, kernel {platform.release()}, {seconds:.0f} s); "
              "each figure is the median of n runs, spread min..max; "
              "tend/x = tend's median over this implementation's")
        if missing:
            print(f"peers that could not be installed: {', '.join(missing)}")
        print(table(rows))
        print(bar_summary(rows))
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"meta": meta(ctx, missing, seconds),
                                   "rows": [r.to_json() for r in rows]}, indent=2) + "\n")
        print(f"\nresults written to {out}")
        return 0
    finally:
        ctx.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
