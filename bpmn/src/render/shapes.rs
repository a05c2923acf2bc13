//! The BPMN symbols: the outline of each element kind and the markers inside it (task types,
//! event triggers, gateway types, loops), drawn as plain SVG paths.

use std::fmt::Write;

use super::text::n;
use crate::model::{Bounds, Looping, Marker};

/// Points relative to a centre, scaled.
fn polygon(out: &mut String, class: &str, cx: f64, cy: f64, s: f64, pts: &[(f64, f64)]) {
    let points: Vec<String> = pts
        .iter()
        .map(|(x, y)| format!("{},{}", n(cx + x * s), n(cy + y * s)))
        .collect();
    let _ = write!(
        out,
        r#"<polygon class="{class}" points="{}"/>"#,
        points.join(" ")
    );
}

fn line(out: &mut String, class: &str, a: (f64, f64), b: (f64, f64)) {
    let _ = write!(
        out,
        r#"<line class="{class}" x1="{}" y1="{}" x2="{}" y2="{}"/>"#,
        n(a.0),
        n(a.1),
        n(b.0),
        n(b.1)
    );
}

fn circle(out: &mut String, class: &str, cx: f64, cy: f64, r: f64) {
    let _ = write!(
        out,
        r#"<circle class="{class}" cx="{}" cy="{}" r="{}"/>"#,
        n(cx),
        n(cy),
        n(r)
    );
}

fn rect(out: &mut String, class: &str, x: f64, y: f64, w: f64, h: f64) {
    let _ = write!(
        out,
        r#"<rect class="{class}" x="{}" y="{}" width="{}" height="{}"/>"#,
        n(x),
        n(y),
        n(w),
        n(h)
    );
}

/// An X of half-width `r` at (`cx`, `cy`).
fn cross(out: &mut String, cx: f64, cy: f64, r: f64) {
    line(out, "mark", (cx - r, cy - r), (cx + r, cy + r));
    line(out, "mark", (cx - r, cy + r), (cx + r, cy - r));
}

/// A + of half-width `r` at (`cx`, `cy`).
fn plus(out: &mut String, cx: f64, cy: f64, r: f64) {
    line(out, "mark", (cx, cy - r), (cx, cy + r));
    line(out, "mark", (cx - r, cy), (cx + r, cy));
}

/// The outline of an activity: a rounded rectangle.
pub(super) fn activity(out: &mut String, b: &Bounds, class: &str) {
    let _ = write!(
        out,
        r#"<rect class="{class}" x="{}" y="{}" width="{}" height="{}" rx="10" ry="10"/>"#,
        n(b.x),
        n(b.y),
        n(b.width),
        n(b.height)
    );
}

/// The outline of an event: one circle (start, end) or two (intermediate, boundary).
pub(super) fn event(out: &mut String, b: &Bounds, double: bool) {
    let (cx, cy, r) = (b.x + b.width / 2.0, b.y + b.height / 2.0, b.width / 2.0);
    circle(out, "shape", cx, cy, r);
    if double {
        circle(out, "inner", cx, cy, (r - 3.0).max(1.0));
    }
}

/// The outline of a gateway: a diamond filling its bounds.
pub(super) fn gateway(out: &mut String, b: &Bounds) {
    let (cx, cy) = (b.x + b.width / 2.0, b.y + b.height / 2.0);
    let _ = write!(
        out,
        r#"<polygon class="shape" points="{},{} {},{} {},{} {},{}"/>"#,
        n(cx),
        n(b.y),
        n(b.x + b.width),
        n(cy),
        n(cx),
        n(b.y + b.height),
        n(b.x),
        n(cy)
    );
}

/// The symbol of a gateway's type, by its BPMN tag.
pub(super) fn gateway_marker(out: &mut String, tag: &str, b: &Bounds) {
    let (cx, cy) = (b.x + b.width / 2.0, b.y + b.height / 2.0);
    let s = b.width.min(b.height) / 50.0;
    match tag {
        "exclusiveGateway" => cross(out, cx, cy, 8.0 * s),
        "parallelGateway" => plus(out, cx, cy, 11.0 * s),
        "inclusiveGateway" => circle(out, "mark-ring", cx, cy, 10.0 * s),
        "complexGateway" => {
            plus(out, cx, cy, 11.0 * s);
            cross(out, cx, cy, 8.0 * s);
        }
        "eventBasedGateway" => {
            circle(out, "mark-thin", cx, cy, 12.0 * s);
            circle(out, "mark-thin", cx, cy, 9.5 * s);
            polygon(out, "mark-thin", cx, cy, s, &pentagon(6.0));
        }
        _ => {}
    }
}

fn pentagon(r: f64) -> Vec<(f64, f64)> {
    (0..5)
        .map(|i| {
            let a = -std::f64::consts::FRAC_PI_2 + i as f64 * 2.0 * std::f64::consts::PI / 5.0;
            (r * a.cos(), r * a.sin())
        })
        .collect()
}

/// The trigger (catching: outlined) or result (throwing: filled) inside an event.
pub(super) fn event_marker(out: &mut String, marker: Marker, b: &Bounds, throwing: bool) {
    let (cx, cy) = (b.x + b.width / 2.0, b.y + b.height / 2.0);
    let s = b.width / 36.0;
    let fill = if throwing { "mark-fill" } else { "mark-thin" };
    match marker {
        Marker::None => {}
        Marker::Message => {
            let class = if throwing { "mark-fill" } else { "mark-thin" };
            rect(out, class, cx - 8.0 * s, cy - 5.5 * s, 16.0 * s, 11.0 * s);
            let _ = write!(
                out,
                r#"<polyline class="{}" points="{},{} {},{} {},{}"/>"#,
                if throwing {
                    "mark-thin-white"
                } else {
                    "mark-thin"
                },
                n(cx - 8.0 * s),
                n(cy - 5.5 * s),
                n(cx),
                n(cy + 1.0 * s),
                n(cx + 8.0 * s),
                n(cy - 5.5 * s)
            );
        }
        Marker::Timer => {
            circle(out, "mark-clock", cx, cy, 10.0 * s);
            for i in 0..12 {
                let a = i as f64 * std::f64::consts::PI / 6.0;
                let (sin, cos) = a.sin_cos();
                line(
                    out,
                    "mark-tick",
                    (cx + 8.0 * s * cos, cy + 8.0 * s * sin),
                    (cx + 10.0 * s * cos, cy + 10.0 * s * sin),
                );
            }
            line(out, "mark-tick", (cx, cy), (cx + 1.5 * s, cy - 7.0 * s));
            line(out, "mark-tick", (cx, cy), (cx + 5.0 * s, cy + 1.0 * s));
        }
        Marker::Error => polygon(
            out,
            fill,
            cx,
            cy,
            s,
            &[
                (-8.0, 8.0),
                (-3.0, -6.0),
                (2.0, 2.0),
                (7.0, -9.0),
                (3.0, 7.0),
                (-2.0, -1.0),
            ],
        ),
        Marker::Escalation => polygon(
            out,
            fill,
            cx,
            cy,
            s,
            &[(0.0, -9.0), (7.0, 8.0), (0.0, 2.0), (-7.0, 8.0)],
        ),
        Marker::Signal => polygon(
            out,
            fill,
            cx,
            cy,
            s,
            &[(0.0, -9.0), (8.5, 6.0), (-8.5, 6.0)],
        ),
        Marker::Conditional => {
            rect(
                out,
                "mark-thin",
                cx - 6.5 * s,
                cy - 8.5 * s,
                13.0 * s,
                17.0 * s,
            );
            for k in [-5.0, -1.5, 2.0, 5.5] {
                line(
                    out,
                    "mark-thin",
                    (cx - 4.5 * s, cy + k * s),
                    (cx + 4.5 * s, cy + k * s),
                );
            }
        }
        Marker::Link => polygon(
            out,
            fill,
            cx,
            cy,
            s,
            &[
                (-8.0, -3.0),
                (1.0, -3.0),
                (1.0, -8.0),
                (9.0, 0.0),
                (1.0, 8.0),
                (1.0, 3.0),
                (-8.0, 3.0),
            ],
        ),
        Marker::Compensation => {
            polygon(
                out,
                fill,
                cx,
                cy,
                s,
                &[(-9.0, 0.0), (-1.0, -6.0), (-1.0, 6.0)],
            );
            polygon(
                out,
                fill,
                cx,
                cy,
                s,
                &[(-1.0, 0.0), (7.0, -6.0), (7.0, 6.0)],
            );
        }
        Marker::Terminate => circle(out, "mark-fill", cx, cy, 10.0 * s),
        Marker::Cancel => cross(out, cx, cy, 7.0 * s),
        Marker::Multiple => polygon(out, fill, cx, cy, s, &pentagon(9.0)),
    }
}

/// The small symbol in an activity's top-left corner that says what kind of task it is.
pub(super) fn task_marker(out: &mut String, tag: &str, b: &Bounds) {
    let (x, y) = (b.x + 8.0, b.y + 8.0);
    match tag {
        "serviceTask" => {
            let (cx, cy) = (x + 8.0, y + 8.0);
            for i in 0..8 {
                let a = i as f64 * std::f64::consts::FRAC_PI_4;
                let (sin, cos) = a.sin_cos();
                line(
                    out,
                    "mark-tooth",
                    (cx + 5.0 * cos, cy + 5.0 * sin),
                    (cx + 8.0 * cos, cy + 8.0 * sin),
                );
            }
            circle(out, "mark-thin", cx, cy, 5.5);
            circle(out, "mark-thin", cx, cy, 2.0);
        }
        "userTask" => {
            circle(out, "mark-thin", x + 8.0, y + 5.0, 4.0);
            let _ = write!(
                out,
                r#"<path class="mark-thin" d="M{},{} C{},{} {},{} {},{} Z"/>"#,
                n(x + 1.0),
                n(y + 17.0),
                n(x + 1.0),
                n(y + 8.5),
                n(x + 15.0),
                n(y + 8.5),
                n(x + 15.0),
                n(y + 17.0)
            );
        }
        "sendTask" | "receiveTask" => {
            let throwing = tag == "sendTask";
            let eb = Bounds {
                x: x - 10.0,
                y: y - 10.0,
                width: 36.0,
                height: 36.0,
            };
            event_marker(out, Marker::Message, &eb, throwing);
        }
        "scriptTask" => {
            rect(out, "mark-thin", x + 2.0, y, 12.0, 16.0);
            for k in [4.0, 8.0, 12.0] {
                line(out, "mark-thin", (x + 4.0, y + k), (x + 12.0, y + k));
            }
        }
        "businessRuleTask" => {
            rect(out, "mark-thin", x, y + 2.0, 17.0, 13.0);
            rect(out, "mark-fill", x, y + 2.0, 17.0, 4.0);
            line(out, "mark-thin", (x, y + 10.5), (x + 17.0, y + 10.5));
            line(out, "mark-thin", (x + 5.0, y + 6.0), (x + 5.0, y + 15.0));
        }
        "manualTask" => {
            let _ = write!(
                out,
                r#"<path class="mark-thin" d="M{x0},{y1} L{x0},{y2} L{x3},{y2} L{x3},{y1} M{x0},{y1} L{x1},{ya} M{x1},{yb} L{x4},{yb} M{x1},{yc} L{x4},{yc} M{x1},{yd} L{x3},{yd}"/>"#,
                x0 = n(x),
                x1 = n(x + 3.0),
                x3 = n(x + 12.0),
                x4 = n(x + 17.0),
                y1 = n(y + 8.0),
                y2 = n(y + 16.0),
                ya = n(y + 3.0),
                yb = n(y + 5.0),
                yc = n(y + 9.0),
                yd = n(y + 13.0),
            );
        }
        _ => {}
    }
}

/// The [+] under a collapsed subprocess or call activity.
pub(super) fn collapsed_marker(out: &mut String, b: &Bounds) {
    let (cx, bottom) = (b.x + b.width / 2.0, b.y + b.height);
    rect(out, "mark-box", cx - 7.0, bottom - 18.0, 14.0, 14.0);
    line(
        out,
        "mark-thin",
        (cx - 4.0, bottom - 11.0),
        (cx + 4.0, bottom - 11.0),
    );
    line(out, "mark-thin", (cx, bottom - 15.0), (cx, bottom - 7.0));
}

/// Multi-instance (three bars) and loop (a circular arrow) markers at the bottom centre;
/// `shift` moves them left of a [+] marker.
pub(super) fn loop_marker(out: &mut String, looping: Looping, b: &Bounds, shift: f64) {
    let (cx, bottom) = (b.x + b.width / 2.0 - shift, b.y + b.height);
    match looping {
        Looping::Parallel => {
            for k in [-5.0, 0.0, 5.0] {
                line(
                    out,
                    "mark-bar",
                    (cx + k, bottom - 17.0),
                    (cx + k, bottom - 5.0),
                );
            }
        }
        Looping::Sequential => {
            for k in [-5.0, 0.0, 5.0] {
                line(
                    out,
                    "mark-bar",
                    (cx - 6.0, bottom - 11.0 + k),
                    (cx + 6.0, bottom - 11.0 + k),
                );
            }
        }
        Looping::Standard => {
            let _ = write!(
                out,
                r#"<path class="mark-thin" d="M{},{} A6,6 0 1 1 {},{} M{},{} L{},{} L{},{}"/>"#,
                n(cx - 4.0),
                n(bottom - 6.0),
                n(cx + 4.0),
                n(bottom - 6.0),
                n(cx - 4.0),
                n(bottom - 10.0),
                n(cx - 4.0),
                n(bottom - 6.0),
                n(cx - 8.0),
                n(bottom - 6.0)
            );
        }
    }
}
