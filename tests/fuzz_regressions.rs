//! Inputs found by the fuzz targets in `fuzz/` (and by writing them), fed
//! through the same public functions, plus the daemon end to end where the
//! bug reached it. Each test names the target and what was wrong.

mod common;

use common::{Daemon, TempDir};
use std::path::Path;
use tend::fleet::messages::{Api, Request, RunningStatistics};

/// `protobuf` target, `fuzz/regressions/protobuf-cpu-infinity`: a
/// RunningStatistics request whose `cpu` is +infinity (fixed32 0x7f800000).
/// It decoded, but its JSON form said `"cpu": null`, which decodes as 0: the
/// two encodings of one message disagreed. Non-finite floats are now refused.
const CPU_INFINITY: &[u8] = &[
    0x0a, 0x02, 0x72, 0x31, 0x1a, 0x10, 0x0d, 0x00, 0x00, 0x80, 0x7f, 0x10, 0x80, 0x08, 0x1a, 0x06,
    0x0a, 0x01, 0x6b, 0x12, 0x01, 0x76,
];

/// The same message with `cpu` = `bits` (fixed32, little endian).
fn with_cpu(bits: u32) -> Vec<u8> {
    let mut buf = CPU_INFINITY.to_vec();
    buf[7..11].copy_from_slice(&bits.to_le_bytes());
    buf
}

#[test]
fn protobuf_non_finite_cpu_is_refused() {
    for bits in [0x7f80_0000, 0xff80_0000, 0x7fc0_0000] {
        let err = Request::decode(&with_cpu(bits), Api::RunningStatistics)
            .expect_err("non-finite cpu must not decode");
        assert!(err.to_string().contains("cpu"), "{err}");
    }
}

#[test]
fn protobuf_finite_cpu_survives_json() {
    let req = Request::decode(&with_cpu(0.25f32.to_bits()), Api::RunningStatistics)
        .expect("finite cpu decodes");
    assert_eq!(req.request_id, "r1");
    let details = req.running_details.clone().expect("running_details");
    assert_eq!(details.cpu, 0.25);
    assert_eq!(details.memory, 1024);
    let back = Request::from_json(&req.to_json(Api::RunningStatistics), Api::RunningStatistics)
        .expect("own JSON decodes");
    assert_eq!(
        back.encode(Api::RunningStatistics),
        req.encode(Api::RunningStatistics)
    );
}

#[test]
fn json_cpu_out_of_f32_range_is_refused() {
    let v = serde_json::json!({"agent_id": "a", "running_details": {"cpu": 1e300}});
    let err = Request::from_json(&v, Api::RunningStatistics).expect_err("1e300 is not an f32");
    assert!(err.to_string().contains("cpu"), "{err}");
    let v = serde_json::json!({"agent_id": "a", "running_details": {"cpu": 0.5}});
    let ok = Request::from_json(&v, Api::RunningStatistics).expect("0.5 is fine");
    let expected = RunningStatistics {
        cpu: 0.5,
        ..RunningStatistics::default()
    };
    assert_eq!(ok.running_details, Some(expected));
}

/// Writing the `config_pies` target showed that `include` reads any path it
/// is given, and fleet configs (text from a remote ConfigServer) went through
/// the same parser in the daemon's main loop: `include /dev/zero;` would
/// exhaust PID 1's memory, a FIFO would block it for good, and parse errors
/// would quote the included file back to the sender. The check that refused
/// includes in fleet configs ran only after the files had been read.
#[test]
fn untrusted_config_include_reads_nothing() {
    let dir = TempDir::new("fuzzreg-include");
    let secret = dir.write("secret.conf", "hunter2-password;\n");
    let text = format!(
        "include {};\ncomponent a {{ command a; }}\n",
        secret.display()
    );
    let err =
        tend::config::parse_untrusted(&text, Path::new("fleet:x")).expect_err("include refused");
    let shown = err.to_string();
    assert!(
        shown.contains("fleet:x:1:1: `include` is not allowed"),
        "{shown}"
    );
    assert!(!shown.contains("hunter2"), "leaked the file: {shown}");
    // Trusted files still include (and so report the file's bad statement).
    let trusted =
        tend::config::parse_str(&text, &dir.path("tend.conf"), tend::config::Syntax::Pies)
            .expect_err("bad statement in the include");
    assert!(trusted.to_string().contains("hunter2"), "{trusted}");
}

/// The same through the daemon: a fleet config naming a file that would
/// block forever if read (a FIFO nobody writes) is refused at once, and the
/// daemon keeps answering.
#[test]
fn daemon_refuses_fleet_config_include() {
    let d = Daemon::start(
        "fuzzreg-fleet",
        "component idle { command \"sleep 600\"; }\n",
    );
    let fifo = d.dir.path("never-written");
    let c_path = std::ffi::CString::new(fifo.to_str().expect("utf-8 path")).expect("no NUL");
    // SAFETY: mkfifo reads a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    let body = serde_json::json!({"configs": [{
        "name": "evil",
        "content": format!("include {};\ncomponent e {{ command e; }}\n", fifo.display()),
    }]});
    let r = d.call("PUT", "/fleet/configs", &body.to_string());
    assert_eq!(r.status, 422, "body: {}", r.body);
    assert!(
        r.body.contains("`include` is not allowed"),
        "body: {}",
        r.body
    );
    assert_eq!(d.get("/version").status, 200);
    assert!(
        d.program("e").is_null(),
        "the fleet component must not exist"
    );
}
