//! Any bytes: a model or a refusal with a position, never a panic, never a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(defs) = flowmesh_bpmn::parse_bytes(data) {
        // Validation and problem rendering run on whatever parsed.
        for p in defs.problems() {
            let _ = p.to_string();
        }
    }
});
