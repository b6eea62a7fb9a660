//! pies selectors: parse arbitrary bytes as a selector, then evaluate it
//! against a small table that covers every type, mode, status and activity.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tend::api::Selector;
use tend::config::{ComponentSpec, Mode};
use tend::table::{Component, Kind, Origin, Status};

fn component(tag: &str, kind: Kind, mode: Mode, status: Status, active: bool) -> Component {
    let mut spec = ComponentSpec::new(tag, vec![format!("/bin/{tag}")]);
    spec.mode = mode;
    let mut c = Component::new(spec, kind, Origin::Config);
    c.status = status;
    c.active = active;
    c
}

fn table() -> &'static [Component] {
    static TABLE: OnceLock<Vec<Component>> = OnceLock::new();
    TABLE.get_or_init(|| {
        vec![
            component("web", Kind::Component, Mode::Respawn, Status::Running, true),
            component("db", Kind::Component, Mode::Respawn, Status::Sleeping, true),
            component(
                "off",
                Kind::Component,
                Mode::Respawn,
                Status::Stopped,
                false,
            ),
            component("hook", Kind::Command, Mode::Once, Status::Running, true),
            component("boot", Kind::Command, Mode::Wait, Status::Finished, true),
            component(
                "down",
                Kind::Component,
                Mode::Startup,
                Status::Stopping,
                true,
            ),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(selector) = Selector::parse(data) else {
        return;
    };
    for c in table() {
        let hit = selector.matches(c);
        // The evaluator is a pure function of the row.
        assert_eq!(hit, selector.matches(c));
        assert_eq!(!hit, Selector::Not(Box::new(selector.clone())).matches(c));
    }
});
