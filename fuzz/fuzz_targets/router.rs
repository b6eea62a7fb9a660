//! The whole control API: `tend::api::route` on a request built from the
//! input, against a state with a few components in the table.
//!
//! Input layout (so the fuzzer can reach every part): the method up to the
//! first newline, the URL (path and query) up to the next, then header lines
//! `Name: value` up to an empty line, then the body.
//!
//! Requests that change anything wait for the main loop; a stand-in thread
//! answers every queued request with Ok so `route` never waits for its 30 s
//! timeout. The state is reset before every input so one input cannot change
//! how the next behaves (crashes reproduce from their single input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use std::thread;
use tend::api::{ApiRequest, route};
use tend::config::{ComponentSpec, Config, Mode};
use tend::shared::{Shared, State};
use tend::table::{Component, Kind, Origin, Status};

fn component(tag: &str, kind: Kind, mode: Mode, status: Status, active: bool) -> Component {
    let mut spec = ComponentSpec::new(tag, vec![format!("/bin/{tag}"), "-x".to_string()]);
    spec.mode = mode;
    let mut c = Component::new(spec, kind, Origin::Config);
    c.status = status;
    c.active = active;
    c
}

/// web running, db sleeping with a prerequisite, off stopped, hook a command.
fn fresh_state() -> State {
    let mut state = State::new(Config::default(), None, vec!["tend".into()]);
    let mut web = component("web", Kind::Component, Mode::Respawn, Status::Running, true);
    web.pid = Some(4242);
    web.restarts = 2;
    web.spec.prerequisites = vec!["db".to_string()];
    let db = component("db", Kind::Component, Mode::Respawn, Status::Sleeping, true);
    let off = component(
        "off",
        Kind::Component,
        Mode::Respawn,
        Status::Stopped,
        false,
    );
    let hook = component("hook", Kind::Command, Mode::Once, Status::Running, true);
    state.table.components = vec![web, db, off, hook];
    state
}

/// Answer every request the API queues, waking on the shared eventfd.
fn stand_in_main_loop(shared: Arc<Shared>) {
    loop {
        let mut pfd = libc::pollfd {
            fd: shared.wake_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd; the timeout only bounds a missed wake-up.
        unsafe { libc::poll(&mut pfd, 1, 100) };
        shared.drain_wake();
        let requests = shared.lock().take_requests();
        for (_request, reply) in requests {
            reply.send(Ok(()));
        }
    }
}

fn shared() -> &'static Arc<Shared> {
    static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();
    SHARED.get_or_init(|| {
        let shared = Shared::new(fresh_state()).expect("eventfd");
        let answering = shared.clone();
        thread::spawn(move || stand_in_main_loop(answering));
        shared
    })
}

/// Split off the text up to the next `\n` (lossy UTF-8, `\r` trimmed).
fn line(data: &mut &[u8]) -> String {
    let (head, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (*data, &[][..]),
    };
    *data = rest;
    let text = String::from_utf8_lossy(head);
    text.strip_suffix('\r').unwrap_or(&text).to_string()
}

fn request(mut data: &[u8]) -> ApiRequest {
    let method = line(&mut data);
    let url = line(&mut data);
    let mut headers = Vec::new();
    while !data.is_empty() {
        let h = line(&mut data);
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':').unwrap_or((&h, ""));
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    ApiRequest {
        method,
        url,
        headers,
        body: data.to_vec(),
    }
}

fuzz_target!(|data: &[u8]| {
    let req = request(data);
    let shared = shared();
    *shared.lock() = fresh_state();
    let resp = route(shared, &req);
    assert!((200..600).contains(&resp.status), "status {}", resp.status);
    assert_ne!(
        resp.status,
        500,
        "500 for {req:?}: {}",
        String::from_utf8_lossy(&resp.body)
    );
    // Every error answer is JSON (pies, RPC or fleet shape).
    if resp.status >= 400
        && resp
            .header("Content-Type")
            .is_some_and(|t| t.contains("json"))
    {
        assert!(serde_json::from_slice::<serde_json::Value>(&resp.body).is_ok());
    }
});
