#!/usr/bin/env python3
"""Write the seed corpora under fuzz/seeds/TARGET/ (committed; run once)."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- config_pies ------------------------------------------------------------
put("config_pies", "full.conf", """# everything
shutdown-timeout 10s;
pidfile /run/tend.pid;
state-directory /var/lib/tend;
max-restarts 5;
restart-window 60s;
sleep-time 1m;
control {
    socket unix:///run/tend.sock;
    listen inet://127.0.0.1:8073;
}
component db {
    command "/usr/bin/db --port 5432";
    mode respawn;
    user nobody;
    group nogroup;
    chdir /;
    umask 022;
    env { set "A=1"; unset B; }
    stdout syslog daemon.info;
    stderr file /tmp/x.log;
    return-code 1 { action disable; }
    return-code (2, 3) { exec "/bin/notify"; }
}
component web {
    command 'web -x';
    prerequisites (db);
    mode once;
    runlevels 2345;
}
config-server { listen inet://0.0.0.0:8899; store /var/lib/tend/fleet; }
agent { server http://127.0.0.1:8899; id a1; tags (env=prod); }
""")
put("config_pies", "include.conf", "include a.conf;\ninclude sub;\ninclude loop.conf;\ninclude (bad.conf, missing.conf);\ncomponent c { command c; prerequisites (a, b); }\n")
put("config_pies", "errors.conf", "component { comand x;\n/* open\n\"str")

# --- config_inittab -----------------------------------------------------------
put("config_inittab", "sysv", """id:3:initdefault:
si::sysinit:/etc/init.d/rcS
l3:3:wait:/etc/init.d/rc 3
1:2345:respawn:/sbin/getty 38400 tty1
ca::ctrlaltdel:/sbin/shutdown -t1 -a -r now
pf::powerfail:/sbin/shutdown -f -h +2 "Power Failure"
""")
put("config_inittab", "busybox", """::sysinit:/etc/init.d/rcS
tty2::askfirst:-/bin/sh
::respawn:/sbin/syslogd -n
::shutdown:/bin/umount -a -r
::restart:/sbin/init
""")

# --- selector -------------------------------------------------------------------
for i, s in enumerate([
    'null', 'true', 'false',
    '{"op":"component","arg":"web"}',
    '{"op":"tag","arg":"db"}',
    '{"op":"type","arg":"command"}',
    '{"op":"mode","arg":"inetd"}',
    '{"op":"active"}',
    '{"op":"status","arg":"sleeping"}',
    '{"op":"not","arg":{"op":"active"}}',
    '{"op":"and","arg":[{"op":"type","arg":"component"},{"op":"or","arg":[{"op":"status","arg":"running"},{"op":"mode","arg":"once"}]}]}',
    '{"op":"or","arg":[]}',
]):
    put("selector", f"s{i:02}.json", s)


# --- protobuf -------------------------------------------------------------------
def varint(n):
    out = b""
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def ld(field, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(field << 3 | 2) + varint(len(data)) + data


def vi(field, n):
    return varint(field << 3) + varint(n)


def f32(field, raw):
    return varint(field << 3 | 5) + raw


def smap(field, k, v):
    return ld(field, ld(1, k) + ld(2, v))


put("protobuf", "group.pb", ld(1, "r1") + ld(2, ld(1, "g") + ld(2, "desc") + ld(3, ld(1, "env") + ld(2, "prod"))))
put("protobuf", "config.pb", ld(1, "r2") + ld(2, ld(1, "c") + ld(2, "tend") + ld(3, "d") + ld(4, "component x { command x; }")))
put("protobuf", "heartbeat.pb", ld(1, "r3") + ld(2, "agent-1") + ld(3, "tend") + ld(4, "0.1") + ld(5, "10.0.0.1")
    + smap(6, "env", "prod") + ld(7, "running") + vi(8, 1700000000))
put("protobuf", "stats.pb", ld(1, "r4") + ld(2, "agent-1") + ld(3, f32(1, b"\x00\x00\x80\x3f") + vi(2, 1024) + smap(3, "k", "v")))
put("protobuf", "configlist.pb", ld(1, "r5") + ld(2, "agent-1") + ld(3, ld(1, "c") + vi(2, 3)))
put("protobuf", "response.pb", ld(1, "r1") + ld(2, "Accept") + ld(3, "ok")
    + ld(4, ld(1, "c") + vi(2, 3) + vi(3, 1) + ld(4, ld(1, "c"))))
put("protobuf", "negative.pb", ld(1, "r6") + ld(2, "a") + ld(3, ld(1, "c") + vi(2, -1)))
put("protobuf", "request.json", '{"request_id":"r","agent_group":{"group_name":"g","tags":[{"name":"a","value":"b"}]},'
    '"config_detail":{"config_name":"c","content":"x"},"agent_id":"a","tags":{"k":"v"},"startup_time":5,'
    '"running_details":{"cpu":0.5,"memory":10,"extras":{"k":"v"}},"config_versions":{"c":2}}')
put("protobuf", "response.json", '{"response_id":"r","code":"Accept","message":"m","config_update_infos":'
    '[{"config_name":"c","update_status":"NEW","config_version":2,"config_detail":{"config_name":"c"}}],'
    '"agents":[{"agent_id":"a","tags":{"k":"v"}}],"config_names":["a"],"agent_groups":[{"group_name":"g"}]}')

# --- router ---------------------------------------------------------------------
def req(method, url, headers=(), body=""):
    return "\n".join([method, url] + list(headers) + ["", body])


routes = [
    req("GET", "/"),
    req("GET", "/programs"),
    req("GET", "/programs?selector=%7B%22op%22%3A%22active%22%7D"),
    req("GET", "/programs/web"),
    req("PUT", "/programs", ["Content-Type: application/json"], '{"op":"and","arg":[{"op":"component","arg":"web"}]}'),
    req("DELETE", "/programs/web"),
    req("POST", "/programs", [], '{"op":"status","arg":"stopped"}'),
    req("GET", "/alive/web"),
    req("GET", "/alive/d%62"),
    req("GET", "/instance"),
    req("PUT", "/instance/reboot"),
    req("PUT", "/instance/PID"),
    req("GET", "/conf/files"),
    req("GET", "/conf/runtime"),
    req("PUT", "/conf/runtime", [], '{"log_level":"debug","max_restarts":3,"shutdown_timeout":"5s"}'),
    req("GET", "/runlevel"),
    req("PUT", "/runlevel", [], '{"runlevel":"3"}'),
    req("GET", "/environ"),
    req("GET", "/environ/PATH"),
    req("POST", "/api/processes.interruptWorkers"),
    req("GET", "/api/processes.killWorkers"),
    req("GET", "/api/plugins.flushBuffers"),
    req("POST", "/api/config.gracefulReload"),
    req("GET", "/api/config.reload"),
    req("GET", "/version"),
    req("GET", "/recentStartTime"),
    req("GET", "/configs"),
    req("GET", "/config?name=web"),
    req("GET", "/updateConfig?max_restarts=4&log_level=warn"),
    req("GET", "/metrics"),
    req("GET", "/metrics?format=prometheus"),
    req("GET", "/fleet/configs"),
    req("PUT", "/programs", ["X-Tend-Access: read"], "true"),
    req("PUT", "/programs", ["Origin: http://evil.example", "Host: localhost"], "true"),
    req("HEAD", "/programs/web"),
]
for i, r in enumerate(routes):
    put("router", f"r{i:02}", r)
