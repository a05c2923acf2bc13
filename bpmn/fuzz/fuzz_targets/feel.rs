//! Any text as a FEEL expression: compiles or is refused with a column; evaluation against a
//! small context ends (the step budget bounds it) without a panic.
#![no_main]

use flowmesh_bpmn::feel::{Context, Expression, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else { return };
    let Ok(expr) = Expression::parse(source) else { return };
    let mut vars = Context::new();
    vars.insert("x".into(), Value::from(5));
    vars.insert("s".into(), Value::from("text"));
    vars.insert("items".into(), Value::List(vec![Value::from(1), Value::from("two"), Value::Null]));
    let mut order = Context::new();
    order.insert("total".into(), Value::from(42));
    vars.insert("order".into(), Value::Context(order));
    let _ = expr.evaluate(&vars, jiff::Timestamp::UNIX_EPOCH);
});
