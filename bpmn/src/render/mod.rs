//! The monitor's diagrams: a model drawn as SVG by our own renderer, from the file's diagram
//! interchange data (or an automatic layout when it has none), with an optional overlay of
//! live numbers and an instance's path. Pure: a model and an overlay in, a string out.

mod layout;
mod shapes;
mod text;

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

pub use layout::Layout;
pub use text::escape;

use crate::model::{Bounds, Definitions, Element, Kind, Point, Process};
use text::n;

/// What the monitor lays over a diagram.
#[derive(Clone, Debug, Default)]
pub struct Overlay {
    /// By element id.
    pub elements: HashMap<String, ElementMarks>,
    /// By sequence-flow id.
    pub flows: HashMap<String, FlowMarks>,
    /// Draw the active / completed / incident count badges (the model page).
    pub badges: bool,
}

#[derive(Clone, Debug, Default)]
pub struct ElementMarks {
    pub active: u64,
    pub completed: u64,
    pub incidents: u64,
    /// Where an instance stands on this element.
    pub passed: Option<Passed>,
    /// A tooltip (times spent, for example).
    pub title: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Passed {
    /// The instance went through it.
    Taken,
    /// The instance is in it now.
    Active,
    /// The instance is stuck in it with an open incident.
    Incident,
}

impl Passed {
    fn class(self) -> &'static str {
        match self {
            Passed::Taken => " taken",
            Passed::Active => " active",
            Passed::Incident => " incident",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct FlowMarks {
    /// The share (0..=1) of the model's instances that took this flow.
    pub share: Option<f64>,
    /// The instance took this flow.
    pub taken: bool,
    pub title: Option<String>,
}

const STYLE: &str = "\
.fm-diagram{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:12px}\
.fm-diagram .shape{fill:#fff;stroke:#22242a;stroke-width:2}\
.fm-diagram .inner{fill:none;stroke:#22242a;stroke-width:1.5}\
.fm-diagram .end .shape{stroke-width:4}\
.fm-diagram .dashed .shape{stroke-dasharray:6 3}\
.fm-diagram .event-sub>.shape{stroke-dasharray:2 3;stroke-width:1.5}\
.fm-diagram .call>.shape{stroke-width:4}\
.fm-diagram .container>.shape{fill:none}\
.fm-diagram .pool,.fm-diagram .lane{fill:none;stroke:#5f6368;stroke-width:1.5}\
.fm-diagram .mark{stroke:#22242a;stroke-width:4;stroke-linecap:round}\
.fm-diagram .mark-ring{fill:none;stroke:#22242a;stroke-width:3}\
.fm-diagram .mark-thin{fill:none;stroke:#22242a;stroke-width:1.3}\
.fm-diagram .mark-thin-white{fill:none;stroke:#fff;stroke-width:1.3}\
.fm-diagram .mark-fill{fill:#22242a;stroke:#22242a;stroke-width:1}\
.fm-diagram .mark-clock{fill:#fff;stroke:#22242a;stroke-width:1.5}\
.fm-diagram .mark-tick{stroke:#22242a;stroke-width:1.2}\
.fm-diagram .mark-tooth{stroke:#22242a;stroke-width:2.4}\
.fm-diagram .mark-box{fill:#fff;stroke:#22242a;stroke-width:1.3}\
.fm-diagram .mark-bar{stroke:#22242a;stroke-width:2}\
.fm-diagram .flow polyline{fill:none;stroke:#22242a;stroke-width:1.5}\
.fm-diagram .message-flow polyline{fill:none;stroke:#5f6368;stroke-width:1.5;stroke-dasharray:8 4}\
.fm-diagram .default-mark{stroke:#22242a;stroke-width:1.5}\
.fm-diagram .label{fill:#22242a}\
.fm-diagram .taken>.shape{stroke:#188038}\
.fm-diagram .flow.taken polyline{stroke:#188038;stroke-width:3}\
.fm-diagram .active>.shape{stroke:#1a73e8;stroke-width:4;fill:#e8f0fe}\
.fm-diagram .incident>.shape{stroke:#d93025;stroke-width:4;fill:#fce8e6}\
.fm-diagram .badge text{font-size:11px;font-weight:600;fill:#fff}\
.fm-diagram .badge.active rect{fill:#1a73e8}\
.fm-diagram .badge.completed rect{fill:#5f6368}\
.fm-diagram .badge.incidents rect{fill:#d93025}\
.fm-diagram .badge.zero{display:none}\
";

/// Draws `defs` with `overlay` as a standalone SVG document (it also works inline in HTML).
pub fn svg(defs: &Definitions, overlay: &Overlay) -> String {
    let layout = Layout::of(defs);
    let mut out = String::new();
    let (min, max) = extent(&layout);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="fm-diagram" viewBox="{} {} {} {}" width="{}" height="{}" role="img">"#,
        n(min.x),
        n(min.y),
        n(max.x - min.x),
        n(max.y - min.y),
        n(max.x - min.x),
        n(max.y - min.y),
    );
    let _ = write!(out, "<style>{STYLE}</style>");
    out.push_str(concat!(
        r#"<defs>"#,
        r##"<marker id="fm-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#22242a"/></marker>"##,
        r##"<marker id="fm-arrow-taken" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="11" markerHeight="11" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#188038"/></marker>"##,
        r##"<marker id="fm-arrow-open" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="11" markerHeight="11" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#fff" stroke="#5f6368"/></marker>"##,
        r##"<marker id="fm-circle" viewBox="0 0 10 10" refX="5" refY="5" markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10"><circle cx="5" cy="5" r="4" fill="#fff" stroke="#5f6368"/></marker>"##,
        r#"</defs>"#
    ));
    pools(&mut out, defs, &layout);
    let hidden = hidden(defs, &layout);
    // Expanded containers first, so what is inside them is drawn on top.
    for p in &defs.processes {
        for el in p.elements.iter().skip(1) {
            if el.is_container()
                && !layout.collapsed.contains(&el.id)
                && !hidden.contains(&el.id)
                && p.inner_of(el.idx).is_none()
            {
                node(&mut out, el, &layout, overlay);
            }
        }
    }
    for p in &defs.processes {
        for f in &p.flows {
            if hidden.contains(&p.element(f.source).id) {
                continue;
            }
            let Some(points) = layout.edges.get(&f.id) else {
                continue;
            };
            let marks = overlay.flows.get(&f.id);
            let is_default = p.element(f.source).default_flow == Some(f.idx);
            flow(
                &mut out,
                &f.id,
                f.name.as_deref(),
                points,
                marks,
                is_default,
                &layout,
            );
        }
    }
    if let Some(c) = &defs.collaboration {
        for m in &c.message_flows {
            let Some(points) = layout.edges.get(&m.id) else {
                continue;
            };
            let _ = write!(
                out,
                r#"<g class="message-flow" data-element="{}"><polyline points="{}" marker-start="url(#fm-circle)" marker-end="url(#fm-arrow-open)"/>"#,
                escape(&m.id),
                points_attr(points)
            );
            edge_label(&mut out, m.name.as_deref(), layout.labels.get(&m.id));
            out.push_str("</g>");
        }
    }
    for boundary in [false, true] {
        for p in &defs.processes {
            for el in p.elements.iter().skip(1) {
                let is_boundary = matches!(el.kind, Kind::Boundary(_)) || el.tag == "boundaryEvent";
                if is_boundary != boundary
                    || p.inner_of(el.idx).is_some()
                    || hidden.contains(&el.id)
                    || (el.is_container() && !layout.collapsed.contains(&el.id))
                {
                    continue;
                }
                node(&mut out, el, &layout, overlay);
            }
        }
    }
    out.push_str("</svg>");
    out
}

/// The smallest box around everything, with a margin.
fn extent(layout: &Layout) -> (Point, Point) {
    let mut min = Point {
        x: f64::INFINITY,
        y: f64::INFINITY,
    };
    let mut max = Point {
        x: f64::NEG_INFINITY,
        y: f64::NEG_INFINITY,
    };
    let mut take = |x: f64, y: f64| {
        min.x = min.x.min(x);
        min.y = min.y.min(y);
        max.x = max.x.max(x);
        max.y = max.y.max(y);
    };
    for b in layout.shapes.values().chain(layout.labels.values()) {
        take(b.x, b.y);
        take(b.x + b.width, b.y + b.height);
    }
    for p in layout.edges.values().flatten() {
        take(p.x, p.y);
    }
    if !min.x.is_finite() {
        return (Point { x: 0.0, y: 0.0 }, Point { x: 100.0, y: 100.0 });
    }
    let margin = 20.0;
    (
        Point {
            x: min.x - margin,
            y: min.y - margin,
        },
        Point {
            x: max.x + margin,
            y: max.y + margin,
        },
    )
}

/// Elements inside a collapsed subprocess: drawn on its own plane, not over the parent's.
fn hidden(defs: &Definitions, layout: &Layout) -> HashSet<String> {
    let mut out = HashSet::new();
    for p in &defs.processes {
        for el in p.elements.iter().skip(1) {
            let mut scope = el.scope;
            while let Some(s) = scope {
                if s == Process::ROOT {
                    break;
                }
                let container = p.element(s);
                // An inner activity is not hidden by its own multi-instance body.
                if container.id != el.id
                    && (layout.collapsed.contains(&container.id) || out.contains(&container.id))
                {
                    out.insert(el.id.clone());
                    break;
                }
                scope = container.scope;
            }
        }
    }
    out
}

fn pools(out: &mut String, defs: &Definitions, layout: &Layout) {
    let Some(c) = &defs.collaboration else {
        return;
    };
    for part in &c.participants {
        let Some(b) = layout.shapes.get(&part.id) else {
            continue;
        };
        let vertical = layout.vertical.contains(&part.id);
        let _ = write!(
            out,
            r#"<g class="participant" data-element="{}">"#,
            escape(&part.id)
        );
        rect_bounds(out, "pool", b);
        let name = part.name.as_deref().unwrap_or_default();
        if part.process_id.is_some() || !name.is_empty() {
            band(out, b, name, vertical, part.process_id.is_some());
        }
        out.push_str("</g>");
        let process = part
            .process_id
            .as_deref()
            .and_then(|id| defs.processes.iter().find(|p| p.id == id));
        for lane in process.map(|p| p.lanes.as_slice()).unwrap_or_default() {
            let Some(lb) = layout.shapes.get(&lane.id) else {
                continue;
            };
            let _ = write!(
                out,
                r#"<g class="lane-group" data-element="{}">"#,
                escape(&lane.id)
            );
            rect_bounds(out, "lane", lb);
            band(
                out,
                lb,
                lane.name.as_deref().unwrap_or_default(),
                vertical,
                true,
            );
            out.push_str("</g>");
        }
    }
}

/// The name band of a pool or lane: a strip along its left (or top, when vertical) side.
fn band(out: &mut String, b: &Bounds, name: &str, vertical: bool, strip: bool) {
    if vertical {
        if strip {
            let _ = write!(
                out,
                r#"<line class="lane" x1="{}" y1="{}" x2="{}" y2="{}"/>"#,
                n(b.x),
                n(b.y + 30.0),
                n(b.x + b.width),
                n(b.y + 30.0)
            );
        }
        text::centred(out, "label", name, b.x + b.width / 2.0, b.y + 15.0, b.width);
    } else if strip {
        let _ = write!(
            out,
            r#"<line class="lane" x1="{}" y1="{}" x2="{}" y2="{}"/>"#,
            n(b.x + 30.0),
            n(b.y),
            n(b.x + 30.0),
            n(b.y + b.height)
        );
        text::vertical(out, name, b.x + 15.0, b.y + b.height / 2.0, b.height);
    } else {
        text::in_bounds(out, name, b, b.width);
    }
}

fn rect_bounds(out: &mut String, class: &str, b: &Bounds) {
    let _ = write!(
        out,
        r#"<rect class="{class}" x="{}" y="{}" width="{}" height="{}"/>"#,
        n(b.x),
        n(b.y),
        n(b.width),
        n(b.height)
    );
}

fn points_attr(points: &[Point]) -> String {
    points
        .iter()
        .map(|p| format!("{},{}", n(p.x), n(p.y)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A flow's name in the label bounds the file gives it (none given: not drawn, as modellers
/// leave unnamed the flows they did not place a label for).
fn edge_label(out: &mut String, name: Option<&str>, at: Option<&Bounds>) {
    if let (Some(name), Some(l)) = (name, at) {
        text::in_bounds(out, name, l, l.width.max(90.0));
    }
}

fn flow(
    out: &mut String,
    id: &str,
    name: Option<&str>,
    points: &[Point],
    marks: Option<&FlowMarks>,
    is_default: bool,
    layout: &Layout,
) {
    let taken = marks.is_some_and(|m| m.taken);
    let _ = write!(
        out,
        r#"<g class="flow{}" data-element="{}""#,
        if taken { " taken" } else { "" },
        escape(id)
    );
    if let Some(share) = marks.and_then(|m| m.share) {
        let _ = write!(out, r#" data-share="{}""#, n(share));
    }
    out.push('>');
    if let Some(t) = marks.and_then(|m| m.title.as_deref()) {
        let _ = write!(out, "<title>{}</title>", escape(t));
    }
    let style = match marks.and_then(|m| m.share) {
        Some(s) if !taken => {
            let s = s.clamp(0.0, 1.0);
            // From grey (no instance) to blue (every instance), thicker as more pass.
            let mix = |a: f64, b: f64| (a + (b - a) * s).round() as u8;
            format!(
                r#" style="stroke:#{:02x}{:02x}{:02x};stroke-width:{}""#,
                mix(154.0, 26.0),
                mix(160.0, 115.0),
                mix(166.0, 232.0),
                n(1.5 + 4.0 * s)
            )
        }
        _ => String::new(),
    };
    let _ = write!(
        out,
        r#"<polyline points="{}"{style} marker-end="url(#{})"/>"#,
        points_attr(points),
        if taken { "fm-arrow-taken" } else { "fm-arrow" }
    );
    if is_default && points.len() >= 2 {
        // The default-flow slash, near the source.
        let (a, b) = (points[0], points[1]);
        let len = ((b.x - a.x).powi(2) + (b.y - a.y).powi(2)).sqrt().max(1.0);
        let (ux, uy) = ((b.x - a.x) / len, (b.y - a.y) / len);
        let c = Point {
            x: a.x + ux * 10.0,
            y: a.y + uy * 10.0,
        };
        let _ = write!(
            out,
            r#"<line class="default-mark" x1="{}" y1="{}" x2="{}" y2="{}"/>"#,
            n(c.x - 5.0 * ux - 5.0 * uy),
            n(c.y - 5.0 * uy + 5.0 * ux),
            n(c.x + 5.0 * ux + 5.0 * uy),
            n(c.y + 5.0 * uy - 5.0 * ux)
        );
    }
    edge_label(out, name, layout.labels.get(id));
    out.push_str("</g>");
}

fn node(out: &mut String, el: &Element, layout: &Layout, overlay: &Overlay) {
    let Some(b) = layout.shapes.get(&el.id).copied() else {
        return;
    };
    let marks = overlay.elements.get(&el.id);
    let tag = el.tag;
    let notation = el.notation;
    let is_event = tag.ends_with("Event");
    let is_gateway = tag.ends_with("Gateway");
    let mut class = String::from("node");
    if is_event {
        class.push_str(" event");
        if tag == "endEvent" {
            class.push_str(" end");
        }
        if !notation.interrupting {
            class.push_str(" dashed");
        }
    } else if is_gateway {
        class.push_str(" gateway");
    } else {
        class.push_str(" activity");
        if el.is_container() || matches!(tag, "transaction" | "adHocSubProcess") {
            class.push_str(" container");
        }
        if notation.event_subprocess {
            class.push_str(" event-sub");
        }
        if tag == "callActivity" {
            class.push_str(" call");
        }
    }
    if let Some(passed) = marks.and_then(|m| m.passed) {
        class.push_str(passed.class());
    }
    let _ = write!(
        out,
        r#"<g class="{class}" data-element="{}" data-type="{tag}">"#,
        escape(&el.id)
    );
    let name = el.name.as_deref().unwrap_or_default();
    let title = match marks.and_then(|m| m.title.as_deref()) {
        Some(t) => format!("{}\n{t}", if name.is_empty() { &el.id } else { name }),
        None => format!(
            "{} ({})",
            if name.is_empty() { &el.id } else { name },
            el.id
        ),
    };
    let _ = write!(out, "<title>{}</title>", escape(&title));
    let expanded = el.is_container() && !layout.collapsed.contains(&el.id);
    if is_event {
        let double = matches!(
            tag,
            "intermediateCatchEvent" | "intermediateThrowEvent" | "boundaryEvent"
        );
        shapes::event(out, &b, double);
        let throwing = matches!(tag, "endEvent" | "intermediateThrowEvent");
        shapes::event_marker(out, notation.marker, &b, throwing);
    } else if is_gateway {
        shapes::gateway(out, &b);
        shapes::gateway_marker(out, tag, &b);
    } else {
        shapes::activity(out, &b, "shape");
        if tag == "transaction" {
            let inner = Bounds {
                x: b.x + 3.0,
                y: b.y + 3.0,
                width: b.width - 6.0,
                height: b.height - 6.0,
            };
            shapes::activity(out, &inner, "inner");
        }
        shapes::task_marker(out, tag, &b);
        let collapsed =
            (el.is_container() || tag == "callActivity" || tag == "transaction") && !expanded;
        let collapsed = collapsed || tag == "callActivity";
        if collapsed {
            shapes::collapsed_marker(out, &b);
        }
        if let Some(l) = notation.looping {
            shapes::loop_marker(out, l, &b, if collapsed { 18.0 } else { 0.0 });
        }
    }
    // Labels: inside activities (at the top of expanded containers), else where the file puts
    // them, else under the shape.
    if !name.is_empty() {
        if let Some(l) = layout.labels.get(&el.id).filter(|_| is_event || is_gateway) {
            text::in_bounds(out, name, l, l.width.max(60.0));
        } else if is_event || is_gateway {
            text::centred(
                out,
                "label",
                name,
                b.x + b.width / 2.0,
                b.y + b.height + 14.0,
                100.0,
            );
        } else if expanded {
            text::centred(
                out,
                "label",
                name,
                b.x + b.width / 2.0,
                b.y + 14.0,
                b.width - 10.0,
            );
        } else {
            text::in_bounds(out, name, &b, b.width - 12.0);
        }
    }
    if overlay.badges && !matches!(el.kind, Kind::Process) {
        let m = marks.cloned().unwrap_or_default();
        badge(
            out,
            &el.id,
            "active",
            m.active,
            b.x - 6.0,
            b.y + b.height - 8.0,
        );
        badge(
            out,
            &el.id,
            "incidents",
            m.incidents,
            b.x + b.width - 16.0,
            b.y + b.height - 8.0,
        );
        badge(
            out,
            &el.id,
            "completed",
            m.completed,
            b.x + b.width - 16.0,
            b.y - 8.0,
        );
    }
    out.push_str("</g>");
}

/// A count in a pill at (`x`, `y`); hidden while zero, so live updates only change its text.
fn badge(out: &mut String, element: &str, what: &str, count: u64, x: f64, y: f64) {
    let text = count.to_string();
    let w = 10.0 + 7.0 * text.len() as f64;
    let _ = write!(
        out,
        r#"<g class="badge {what}{}" data-badge="{what}" data-for="{}"><rect x="{}" y="{}" width="{}" height="16" rx="8" ry="8"/><text x="{}" y="{}" text-anchor="middle" dominant-baseline="central">{text}</text></g>"#,
        if count == 0 { " zero" } else { "" },
        escape(element),
        n(x),
        n(y),
        n(w),
        n(x + w / 2.0),
        n(y + 8.0),
    );
}
