//! The fleet (iLogtail ConfigServer) codec: every request and response type,
//! decoded from the input as protobuf and, when the input is JSON, as JSON.
//!
//! Whatever decodes must survive a round trip: encoding it and decoding that
//! again gives the same bytes on the next encoding (bytes, not `==`, so a NaN
//! float does not count as a difference).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tend::fleet::messages::{Api, PayloadKind, Request, Response};
use tend::fleet::proto::Reader;

const KINDS: [PayloadKind; 9] = [
    PayloadKind::None,
    PayloadKind::AgentGroup,
    PayloadKind::AgentGroups,
    PayloadKind::Config,
    PayloadKind::Configs,
    PayloadKind::ConfigNames,
    PayloadKind::AgentGroupNames,
    PayloadKind::Agents,
    PayloadKind::ConfigUpdateInfos,
];

/// The raw field reader must stop (with a field, the end or an error).
fn walk_fields(data: &[u8]) {
    let mut r = Reader::new(data);
    while let Ok(Some(_)) = r.next_field() {}
}

fn protobuf_requests(data: &[u8]) {
    for api in Api::ALL {
        if let Ok(req) = Request::decode(data, api) {
            let once = req.encode(api);
            let again = Request::decode(&once, api).expect("re-decode own request encoding");
            assert_eq!(once, again.encode(api), "request round trip for {api:?}");
            // JSON carries the same request as protobuf.
            let json = Request::from_json(&req.to_json(api), api).expect("own JSON of a request");
            assert_eq!(once, json.encode(api), "request via JSON for {api:?}");
            let _ = req.missing(api);
        }
    }
}

fn protobuf_responses(data: &[u8]) {
    for kind in KINDS {
        if let Ok(resp) = Response::decode(data, kind) {
            let once = resp.encode();
            let again = Response::decode(&once, kind).expect("re-decode own response encoding");
            assert_eq!(once, again.encode(), "response round trip for {kind:?}");
            let json = Response::from_json(&resp.to_json(), kind).expect("own JSON of a response");
            assert_eq!(once, json.encode(), "response via JSON for {kind:?}");
        }
    }
}

fn json_messages(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for api in Api::ALL {
        if let Ok(req) = Request::from_json(&value, api) {
            let _ = req.encode(api);
            let back = Request::from_json(&req.to_json(api), api);
            assert!(back.is_ok(), "own JSON of {api:?} refused: {back:?}");
        }
    }
    for kind in KINDS {
        if let Ok(resp) = Response::from_json(&value, kind) {
            let _ = resp.encode();
            let back = Response::from_json(&resp.to_json(), kind);
            assert!(back.is_ok(), "own JSON of {kind:?} refused: {back:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    walk_fields(data);
    protobuf_requests(data);
    protobuf_responses(data);
    json_messages(data);
});
