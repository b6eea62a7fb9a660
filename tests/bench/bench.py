#!/usr/bin/env python3
"""Compare tend with other process supervisors and inits, side by side.

Run by `make bench`.  Python 3 standard library only.

Each measurement ("row") is a function decorated with @row that returns a
Row: one result per implementation, each the median of N runs with the
spread (min..max), or a reason why it was skipped.  To add a row, write a
function, decorate it, and it shows up in the table and in
bench/results.json.  A missing peer, a tend that is not ready, or a
non-root user skips a row (or one cell of it) with a reason: nothing here
fails hard.

Peers are installed from Debian packages when missing and we are root:
tini, dumb-init, catatonit, busybox, supervisor (supervisord), wrk.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve()
# tests/bench/bench.py -> the repository root (the working directory if moved).
REPO = _HERE.parents[2] if len(_HERE.parents) > 2 else Path.cwd()
RESULTS = REPO / "bench" / "results.json"

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

    def to_json(self):
        if self.skipped is not None or not self.samples:
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


class Row:
    """A measurement compared across implementations."""

    def __init__(self, key, title, unit, lower_is_better=True):
        self.key = key
        self.title = title
        self.unit = unit
        self.lower_is_better = lower_is_better
        self.cells = {}  # implementation name -> Cell
        self.skipped = None  # reason when the whole row was skipped
        self.todo = False

    def to_json(self):
        out = {"key": self.key, "title": self.title, "unit": self.unit}
        if self.todo:
            out["todo"] = True
        if self.skipped:
            out["skipped"] = self.skipped
        out["results"] = {k: c.to_json() for k, c in self.cells.items()}
        return out


ROWS = []


def row(fn):
    """Register a row function: fn(ctx) -> Row."""
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


class Supervised:
    """A supervisor started in the background, with cleanup that also kills
    the processes it started (they may live in sessions of their own)."""

    def __init__(self, argv, logfile, env=None):
        self.argv = argv
        self.logfile = logfile
        self.log = open(logfile, "ab")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
            env=env,
        )
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def wait_children(self, n, timeout=10.0):
        """True once the supervisor has at least n children."""
        return bool(wait_for(lambda: not self.alive() or len(children_of(self.pid)) >= n, timeout)) and self.alive()

    def why_not(self):
        if not self.alive():
            return f"exited with status {self.proc.returncode}: {tail(self.logfile) or 'no output'}"
        return f"did not start its children in time: {tail(self.logfile) or 'no output'}"

    def stop(self):
        kids = descendants_of(self.pid) if self.alive() else []
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
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


# ------------------------------------------------------------- context


class Context:
    """What every row needs: paths, settings, and which implementations exist."""

    def __init__(self, args):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix=f"tend-bench-{os.getpid()}-"))
        self.tend = Path(args.tend).resolve() if args.tend else REPO / "target" / "release" / "tend"
        self.peers = {}  # command name -> absolute path
        for cmd in list(PEER_PACKAGES.values()):
            p = which(cmd)
            if p:
                self.peers[cmd] = p
        self._tend_control_ok = None
        self.counter = 0

    def fresh(self, name):
        """A new empty directory under the bench temp dir."""
        self.counter += 1
        d = self.tmp / f"{self.counter:03d}-{name}"
        d.mkdir()
        return d

    def tend_missing(self):
        if not self.tend.is_file():
            return f"{self.tend} not built (run make build)"
        return None

    def tend_control_args(self, d):
        """--control on a private socket, so runs never touch /run/tend.sock;
        left out if this tend does not accept it yet."""
        if self._tend_control_ok is None:
            probe = d / "probe.sock"
            try:
                r = subprocess.run(
                    [str(self.tend), "--control", f"unix://{probe}", "--", "true"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, timeout=10,
                )
                self._tend_control_ok = r.returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                self._tend_control_ok = False
        if self._tend_control_ok:
            return ["--control", f"unix://{d}/tend.sock"]
        return []

    def zero_config(self, name, d):
        """argv prefix that runs "CMD ARGS" under implementation name."""
        if name == "tend":
            return [str(self.tend)] + self.tend_control_args(d) + ["--"]
        exe = self.peers.get(name)
        return ZERO_CONFIG_INITS[name](exe) if exe else None

    def zero_config_impls(self):
        """("tend" or peer name, reason-if-unavailable) for the container inits."""
        out = [("tend", self.tend_missing())]
        for name in ZERO_CONFIG_INITS:
            out.append((name, None if name in self.peers else f"{name} not installed"))
        return out

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


# ------------------------------------------------------------- peers


def install_peers(ctx):
    """apt-get install each missing peer package on its own; report the rest."""
    missing = [pkg for pkg, cmd in PEER_PACKAGES.items() if cmd not in ctx.peers]
    if not missing:
        return
    if ctx.args.no_install:
        log(f"peers not installed (--no-install): {', '.join(missing)}")
        return
    if not is_root() or not which("apt-get"):
        log(f"cannot install peers (need root and apt-get): {', '.join(missing)}")
        return
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
    finally:
        if made_policy:
            policy.unlink(missing_ok=True)


# -------------------------------------------------------------- rows


@row
def binary_size(ctx):
    r = Row("binary_size", "Binary size, stripped", "KiB")
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
        r.cells[name] = Cell([copy.stat().st_size / 1024], note=note)
    return r


@row
def idle_rss(ctx):
    r = Row("idle_rss", "Idle RSS supervising one `sleep 1000`", "KiB")
    for name, missing in ctx.zero_config_impls():
        if missing:
            r.cells[name] = Cell.skip(missing)
            continue
        samples, reason = [], None
        for _ in range(ctx.args.runs):
            d = ctx.fresh(f"rss-{name}")
            s = Supervised(ctx.zero_config(name, d) + ["sleep", "1000"], d / "log")
            try:
                if not s.wait_children(1):
                    reason = s.why_not()
                    break
                time.sleep(ctx.args.settle)  # let lazy setup (threads, sockets) finish
                samples.append(rss_kib(s.pid))
            finally:
                s.stop()
        r.cells[name] = Cell(samples) if samples else Cell.skip(reason)
    return r


def tend_config_three(d):
    conf = d / "tend.conf"
    conf.write_text(
        "".join(f'component c{i} {{ command "sleep 1000"; }}\n' for i in range(3))
    )
    return conf


def supervisord_config_three(d):
    conf = d / "supervisord.conf"
    conf.write_text(
        "[supervisord]\n"
        "nodaemon=true\n"
        f"logfile={d}/supervisord.log\n"
        f"pidfile={d}/supervisord.pid\n"
        f"childlogdir={d}\n"
        # As root supervisord wants a user to drop to; as anyone else it refuses one.
        + ("user=root\n" if is_root() else "")
        + "".join(
            f"[program:c{i}]\ncommand=sleep 1000\nstartsecs=0\n"
            f"stdout_logfile=NONE\nstderr_logfile=NONE\n"
            for i in range(3)
        )
    )
    return conf


@row
def idle_wakeups(ctx):
    secs = ctx.args.idle_seconds
    r = Row("idle_ctx_switches", f"Context switches in {secs:g} s idle, 3 components", "switches")
    impls = [("tend", ctx.tend_missing())]
    impls.append(("supervisord", None if "supervisord" in ctx.peers else "supervisord not installed"))
    for name, missing in impls:
        if missing:
            r.cells[name] = Cell.skip(missing)
            continue
        samples, reason = [], None
        for _ in range(ctx.args.idle_runs):
            d = ctx.fresh(f"idle-{name}")
            if name == "tend":
                argv = [str(ctx.tend), "-c", str(tend_config_three(d))] + ctx.tend_control_args(d)
            else:
                argv = [ctx.peers["supervisord"], "-n", "-c", str(supervisord_config_three(d))]
            s = Supervised(argv, d / "log")
            try:
                if not s.wait_children(3):
                    reason = s.why_not()
                    break
                time.sleep(ctx.args.settle)
                before = ctx_switches(s.pid)
                time.sleep(secs)
                samples.append(ctx_switches(s.pid) - before)
            finally:
                s.stop()
        r.cells[name] = Cell(samples) if samples else Cell.skip(reason)
    return r


STORM_SCRIPT = r'''
import json, os, sys, time
n, limit = int(sys.argv[1]), float(sys.argv[2])
t_start = time.monotonic()
mid = os.fork()
if mid == 0:
    # The middle process: fork n grandchildren that block on a pipe only we
    # hold open, then exit, so they are orphaned and exit all at once.
    r, w = os.pipe()
    for _ in range(n):
        if os.fork() == 0:
            os.close(w)
            os.read(r, 1)
            os._exit(0)
    os._exit(0)
os.waitpid(mid, 0)
t_orphaned = time.monotonic()
me = os.getpid()
left = -1
while time.monotonic() - t_orphaned < limit:
    # A zombie stays in /proc until PID 1 reaps it.
    left = sum(1 for e in os.listdir("/proc") if e.isdigit() and int(e) not in (1, me))
    if left == 0:
        break
    time.sleep(0.001)
print(json.dumps({"ok": left == 0, "left": left,
                  "fork_s": t_orphaned - t_start,
                  "reap_s": time.monotonic() - t_orphaned}), flush=True)
sys.exit(0 if left == 0 else 1)
'''


@row
def orphan_storm(ctx):
    n = ctx.args.orphans
    r = Row("orphan_storm", f"Reap a storm of {n} orphans as PID 1 (whole unshare run)", "ms")
    reap = Row("orphan_storm_reap", f"  of which: from orphaning to all {n} reaped", "ms")
    unshare = which("unshare")
    if not is_root():
        r.skipped = reap.skipped = "needs root for unshare --pid"
        return [r, reap]
    if not unshare:
        r.skipped = reap.skipped = "unshare not installed (util-linux)"
        return [r, reap]
    d0 = ctx.fresh("storm")
    script = d0 / "storm.py"
    script.write_text(STORM_SCRIPT)
    for name, missing in ctx.zero_config_impls():
        if missing:
            r.cells[name] = reap.cells[name] = Cell.skip(missing)
            continue
        walls, reaps, reason = [], [], None
        for _ in range(ctx.args.runs):
            d = ctx.fresh(f"storm-{name}")
            argv = [unshare, "--pid", "--fork", "--mount-proc"] + ctx.zero_config(name, d) + [
                sys.executable, str(script), str(n), str(ctx.args.storm_limit)]
            t0 = time.perf_counter()
            try:
                p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, timeout=ctx.args.storm_limit + 30)
            except subprocess.TimeoutExpired:
                reason = "timed out"
                break
            wall = time.perf_counter() - t0
            result = None
            for line in p.stdout.decode(errors="replace").splitlines():
                if line.startswith("{"):
                    try:
                        result = json.loads(line)
                    except ValueError:
                        pass
            if not result or not result.get("ok"):
                err = p.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
                reason = (f"exit {p.returncode}, result {result}: {err[0]}" if result
                          else f"exit {p.returncode}, no result: {err[0]}")
                break
            walls.append(wall * 1000)
            reaps.append(result["reap_s"] * 1000)
        r.cells[name] = Cell(walls) if walls else Cell.skip(reason)
        reap.cells[name] = Cell(reaps) if reaps else Cell.skip(reason)
    return [r, reap]


@row
def exec_latency(ctx):
    n = ctx.args.exec_runs
    r = Row("exec_true", f"Start, run `true`, exit (`INIT -- true`, {n} runs)", "ms")
    impls = [("direct (no init)", None)] + ctx.zero_config_impls()
    for name, missing in impls:
        if missing:
            r.cells[name] = Cell.skip(missing)
            continue
        d = ctx.fresh("exec")
        prefix = [] if name.startswith("direct") else ctx.zero_config(name, d)
        # An init that exits 0 without running its child would look fast:
        # check first that the child runs and its status comes back.
        check = subprocess.run(prefix + ["sh", "-c", "exit 7"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if check.returncode != 7:
            r.cells[name] = Cell.skip(f"`-- sh -c 'exit 7'` exited with {check.returncode}, not 7")
            continue
        argv = prefix + ["true"]
        samples, reason = [], None
        for _ in range(n):
            t0 = time.perf_counter()
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            dt = time.perf_counter() - t0
            if p.returncode != 0:
                reason = f"`{' '.join(argv)}` exited with {p.returncode}"
                break
            samples.append(dt * 1000)
        r.cells[name] = Cell(samples) if samples and not reason else Cell.skip(reason)
    return r


def todo_row(key, title, unit, what):
    r = Row(key, title, unit)
    r.todo = True
    r.skipped = f"not measured yet ({what})"
    return r


@row
def api_requests(ctx):
    # TODO: wrk -t2 -c16 -d10s against tend's API (GET /programs) through the
    # TCP gateway, vs supervisord's XML-RPC; needs the gateway.
    return todo_row("api_rps", "API requests/s (wrk, GET /programs)", "req/s", "needs the API and gateway")


@row
def start_many(ctx):
    # TODO: time from `tend -c` with 500 `sleep` components to all running
    # (poll GET /programs), vs supervisord with 500 programs.
    return todo_row("start_500", "Start 500 components", "ms", "needs the supervisor and API")


@row
def configserver_heartbeats(ctx):
    # TODO: HeartBeat requests/s that `tend config-server` answers, and its RSS
    # with 1,000 registered agents.
    return todo_row("configserver_hb", "ConfigServer heartbeats/s", "req/s", "needs the ConfigServer")


# ------------------------------------------------------------ output


def fmt(v):
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def table(rows):
    """Rows grouped by measurement, one line per implementation."""
    lines = []
    hdr = ("implementation", "median", "spread (min..max)", "n", "note")
    widths = (22, 12, 24, 5)
    for r in rows:
        lines.append("")
        lines.append(f"{r.title} [{r.unit}]")
        if r.skipped:
            lines.append(f"  skipped: {r.skipped}")
            continue
        lines.append("  " + "".join(h.ljust(w) for h, w in zip(hdr, widths)) + hdr[-1])
        for name, c in r.cells.items():
            j = c.to_json()
            if "skipped" in j:
                cols = (name, "-", "", "")
                note = f"skipped: {j['skipped']}"
            else:
                cols = (name, fmt(j["median"]), f"{fmt(j['min'])}..{fmt(j['max'])}", str(j["n"]))
                note = j.get("note", "")
            lines.append("  " + "".join(str(c).ljust(w) for c, w in zip(cols, widths)) + note)
    return "\n".join(lines)


def tend_version(ctx):
    if ctx.tend_missing():
        return None
    try:
        p = subprocess.run([str(ctx.tend), "--version"], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=5)
        return p.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def meta(ctx):
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
        "settings": vars(ctx.args),
    }


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tend", help="tend binary (default target/release/tend)")
    p.add_argument("--runs", type=int, default=5, help="runs per figure (default 5)")
    p.add_argument("--idle-runs", type=int, default=3, help="runs of the idle row (default 3)")
    p.add_argument("--idle-seconds", type=float, default=10.0, help="idle window (default 10)")
    p.add_argument("--orphans", type=int, default=2000, help="orphans per storm (default 2000)")
    p.add_argument("--storm-limit", type=float, default=60.0, help="seconds a storm may take")
    p.add_argument("--exec-runs", type=int, default=200, help="runs of the exec row (default 200)")
    p.add_argument("--settle", type=float, default=0.5, help="seconds to wait before sampling")
    p.add_argument("--only", help="comma-separated row functions to run (e.g. idle_rss,binary_size)")
    p.add_argument("--quick", action="store_true", help="few runs, short idle window: a smoke test")
    p.add_argument("--no-install", action="store_true", help="do not apt-get install missing peers")
    p.add_argument("--json", default=str(RESULTS), help=f"results file (default {RESULTS})")
    a = p.parse_args(argv)
    if a.quick:
        a.runs, a.idle_runs, a.idle_seconds, a.exec_runs, a.orphans = 2, 1, 2.0, 20, 200
    return a


def main(argv):
    args = parse_args(argv)
    ctx = Context(args)
    try:
        install_peers(ctx)
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
            try:
                got = fn(ctx)
            except Exception as e:  # one broken row must not lose the others
                got = Row(fn.__name__, fn.__name__, "")
                got.skipped = f"error: {type(e).__name__}: {e}"
            rows.extend(got if isinstance(got, list) else [got])
        print(f"tend benchmarks ({'root' if is_root() else 'not root'}, "
              f"{os.cpu_count()} CPUs, kernel {platform.release()}); "
              "each figure is the median of n runs")
        print(table(rows))
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"meta": meta(ctx), "rows": [r.to_json() for r in rows]},
                                  indent=2) + "\n")
        print(f"\nresults written to {out}")
        return 0
    finally:
        ctx.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
