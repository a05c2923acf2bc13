//! The monitor's renderer: well-formed SVG, shapes at their diagram bounds, edges along their
//! waypoints, markers per element kind, an automatic layout for files without diagram data,
//! and the overlay of counts and paths.

use std::collections::HashMap;

use flowmesh_bpmn::model::{Bounds, Definitions, Point};
use flowmesh_bpmn::parse;
use flowmesh_bpmn::render::{self, ElementMarks, FlowMarks, Overlay, Passed};
use roxmltree::{Document, Node};

fn drawn() -> Definitions {
    parse::parse(include_str!("fixtures/drawn.bpmn")).expect("the fixture parses")
}

fn num(node: Node<'_, '_>, attr: &str) -> f64 {
    node.attribute(attr)
        .unwrap_or_else(|| panic!("{:?} has no {attr}", node.tag_name()))
        .parse()
        .expect("a number")
}

/// The group drawing `id`, which must exist once.
fn group<'a>(doc: &'a Document<'a>, id: &str) -> Node<'a, 'a> {
    let found: Vec<_> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "g" && n.attribute("data-element") == Some(id))
        .collect();
    assert_eq!(found.len(), 1, "element {id} is drawn once");
    found[0]
}

/// The bounds of a group's outline (rect, circle or diamond with class "shape").
fn outline(g: Node<'_, '_>) -> Bounds {
    let shape = g
        .children()
        .find(|c| {
            c.attribute("class").is_some_and(|k| {
                k.split(' ')
                    .any(|k| k == "shape" || k == "pool" || k == "lane")
            })
        })
        .expect("an outline");
    match shape.tag_name().name() {
        "rect" => Bounds {
            x: num(shape, "x"),
            y: num(shape, "y"),
            width: num(shape, "width"),
            height: num(shape, "height"),
        },
        "circle" => {
            let r = num(shape, "r");
            Bounds {
                x: num(shape, "cx") - r,
                y: num(shape, "cy") - r,
                width: 2.0 * r,
                height: 2.0 * r,
            }
        }
        "polygon" => {
            let pts = points(shape.attribute("points").unwrap_or_default());
            let min_x = pts.iter().map(|p| p.x).fold(f64::INFINITY, f64::min);
            let max_x = pts.iter().map(|p| p.x).fold(f64::NEG_INFINITY, f64::max);
            let min_y = pts.iter().map(|p| p.y).fold(f64::INFINITY, f64::min);
            let max_y = pts.iter().map(|p| p.y).fold(f64::NEG_INFINITY, f64::max);
            Bounds {
                x: min_x,
                y: min_y,
                width: max_x - min_x,
                height: max_y - min_y,
            }
        }
        other => panic!("unexpected outline {other}"),
    }
}

fn points(text: &str) -> Vec<Point> {
    text.split_whitespace()
        .map(|p| {
            let (x, y) = p.split_once(',').expect("x,y");
            Point {
                x: x.parse().expect("x"),
                y: y.parse().expect("y"),
            }
        })
        .collect()
}

fn close(a: &Bounds, b: &Bounds) -> bool {
    (a.x - b.x).abs() < 0.01
        && (a.y - b.y).abs() < 0.01
        && (a.width - b.width).abs() < 0.01
        && (a.height - b.height).abs() < 0.01
}

fn classes<'a>(n: Node<'a, 'a>) -> Vec<&'a str> {
    n.attribute("class")
        .unwrap_or_default()
        .split(' ')
        .collect()
}

#[test]
fn every_flow_node_is_drawn_at_its_bounds_and_every_edge_along_its_waypoints() {
    let defs = drawn();
    let svg = render::svg(&defs, &Overlay::default());
    let doc = Document::parse(&svg).expect("well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let folded = ["folded-start", "folded-end"];
    let mut shapes = 0;
    for p in &defs.processes {
        for el in p.elements.iter().skip(1) {
            // A multi-instance body and its inner activity are one shape.
            if folded.contains(&el.id.as_str()) || p.inner_of(el.idx).is_some() {
                continue;
            }
            let di = defs.diagram.shapes[&el.id].bounds;
            let drawn = outline(group(&doc, &el.id));
            assert!(
                close(&drawn, &di),
                "{}: drawn at {drawn:?}, DI says {di:?}",
                el.id
            );
            shapes += 1;
        }
        for f in &p.flows {
            if f.id == "fs1" {
                continue;
            }
            let g = group(&doc, &f.id);
            let line = g
                .children()
                .find(|c| c.tag_name().name() == "polyline")
                .expect("a polyline");
            let got = points(line.attribute("points").unwrap_or_default());
            assert_eq!(got, defs.diagram.edges[&f.id].waypoints, "flow {}", f.id);
            assert_eq!(line.attribute("marker-end"), Some("url(#fm-arrow)"));
        }
    }
    assert_eq!(shapes, 18);
    for pool in ["pool-order", "pool-bank", "lane-shop", "lane-back"] {
        let di = defs.diagram.shapes[pool].bounds;
        assert!(close(&outline(group(&doc, pool)), &di), "{pool}");
    }
    let mf = group(&doc, "mf-pay");
    let line = mf
        .children()
        .find(|c| c.tag_name().name() == "polyline")
        .expect("polyline");
    assert_eq!(
        points(line.attribute("points").unwrap_or_default()),
        defs.diagram.edges["mf-pay"].waypoints
    );
    assert_eq!(line.attribute("marker-start"), Some("url(#fm-circle)"));
}

#[test]
fn children_of_a_collapsed_subprocess_stay_on_their_own_plane() {
    let svg = render::svg(&drawn(), &Overlay::default());
    let doc = Document::parse(&svg).expect("well-formed XML");
    for hidden in ["folded-start", "folded-end", "fs1"] {
        assert!(
            !doc.descendants()
                .any(|n| n.attribute("data-element") == Some(hidden)),
            "{hidden} is inside a collapsed subprocess"
        );
    }
    // The collapsed one carries [+]; the expanded one does not.
    let plus = |id: &str| {
        group(&doc, id)
            .children()
            .any(|c| c.attribute("class") == Some("mark-box"))
    };
    assert!(plus("folded"));
    assert!(!plus("sub"));
}

#[test]
fn markers_say_what_each_element_is() {
    let svg = render::svg(&drawn(), &Overlay::default());
    let doc = Document::parse(&svg).expect("well-formed XML");
    let count = |id: &str, tag: &str, class: &str| {
        group(&doc, id)
            .children()
            .filter(|c| c.tag_name().name() == tag && c.attribute("class") == Some(class))
            .count()
    };
    // Events: start thin, end thick, intermediate and boundary double.
    assert!(classes(group(&doc, "done")).contains(&"end"));
    assert!(!classes(group(&doc, "start")).contains(&"end"));
    assert_eq!(count("wait-paid", "circle", "inner"), 1);
    assert_eq!(count("check-failed", "circle", "inner"), 1);
    assert_eq!(count("start", "circle", "inner"), 0);
    // Triggers: terminate filled circle, message envelope, timer clock, error bolt, compensation
    // double triangle; throwing markers are filled.
    assert_eq!(count("done", "circle", "mark-fill"), 1);
    assert_eq!(count("wait-paid", "rect", "mark-thin"), 1);
    assert_eq!(count("wait-day", "circle", "mark-clock"), 1);
    assert_eq!(count("check-slow", "circle", "mark-clock"), 1);
    assert_eq!(count("check-failed", "polygon", "mark-thin"), 1);
    assert_eq!(count("failed", "polygon", "mark-fill"), 1);
    assert_eq!(count("check-undo", "polygon", "mark-thin"), 2);
    // Non-interrupting boundary: dashed.
    assert!(classes(group(&doc, "check-slow")).contains(&"dashed"));
    assert!(!classes(group(&doc, "check-failed")).contains(&"dashed"));
    // Gateways: X and +.
    assert_eq!(count("ok", "line", "mark"), 2);
    assert_eq!(count("fork", "line", "mark"), 2);
    // Tasks: the gear's teeth, the user, the send envelope (filled), the script; sequential
    // multi-instance bars.
    assert_eq!(count("check", "line", "mark-tooth"), 8);
    assert_eq!(count("approve", "path", "mark-thin"), 1);
    assert_eq!(count("notify", "rect", "mark-fill"), 1);
    assert_eq!(count("sum", "line", "mark-bar"), 3);
    // The default flow's slash.
    assert_eq!(
        group(&doc, "to-sub")
            .children()
            .filter(|c| c.attribute("class") == Some("default-mark"))
            .count(),
        1
    );
}

#[test]
fn labels_are_escaped_and_placed() {
    let svg = render::svg(&drawn(), &Overlay::default());
    let doc = Document::parse(&svg).expect("well-formed XML");
    let text = |id: &str| -> String {
        group(&doc, id)
            .descendants()
            .filter(|n| n.tag_name().name() == "tspan")
            .filter_map(|n| n.text())
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(text("check"), "Check the order <fast>");
    assert_eq!(text("pool-order"), "");
    assert!(svg.contains("Order &amp; co"));
    // A label with DI bounds is centred in them.
    let label = group(&doc, "start")
        .children()
        .find(|c| c.tag_name().name() == "text")
        .expect("a label");
    assert_eq!(num(label, "x"), 168.0 + 32.0);
}

#[test]
fn a_model_without_diagram_data_gets_a_left_to_right_layout() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/testing/fixtures");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("the conformance fixtures")
        .map(|e| e.expect("an entry").path())
        .collect();
    files.sort();
    assert!(files.len() > 10);
    for file in &files {
        let name = file.display();
        let xml = std::fs::read_to_string(file).expect("readable");
        let defs = parse::parse(&xml).expect("fixture parses");
        assert!(defs.diagram.is_empty(), "{name} has no DI");
        let svg = render::svg(&defs, &Overlay::default());
        let doc = Document::parse(&svg).unwrap_or_else(|e| panic!("{name}: {e}"));
        for p in &defs.processes {
            let mut placed: HashMap<&str, Bounds> = HashMap::new();
            for &c in &p.root().children {
                let el = p.element(c);
                let b = outline(group(&doc, &el.id));
                placed.insert(&el.id, b);
            }
            // Nothing overlaps but boundary events on their host.
            let tops: Vec<(&str, Bounds)> = placed
                .iter()
                .filter(|(id, _)| {
                    p.element(p.element_by_id(id).expect("known")).tag != "boundaryEvent"
                })
                .map(|(id, b)| (*id, *b))
                .collect();
            for (i, (a, ab)) in tops.iter().enumerate() {
                for (b, bb) in &tops[i + 1..] {
                    let apart = ab.x + ab.width <= bb.x
                        || bb.x + bb.width <= ab.x
                        || ab.y + ab.height <= bb.y
                        || bb.y + bb.height <= ab.y;
                    assert!(apart, "{name}: {a} and {b} overlap");
                }
            }
            // Every top-level flow leaves its source and reaches its target.
            for f in &p.flows {
                let (s, t) = (&p.element(f.source).id, &p.element(f.target).id);
                let (Some(sb), Some(tb)) = (placed.get(s.as_str()), placed.get(t.as_str())) else {
                    continue;
                };
                let line = group(&doc, &f.id)
                    .children()
                    .find(|c| c.tag_name().name() == "polyline")
                    .expect("polyline");
                let pts = points(line.attribute("points").unwrap_or_default());
                let on = |p: &Point, b: &Bounds| {
                    p.x >= b.x - 0.01
                        && p.x <= b.x + b.width + 0.01
                        && p.y >= b.y - 0.01
                        && p.y <= b.y + b.height + 0.01
                };
                assert!(on(&pts[0], sb), "{name}: {} starts on {s}", f.id);
                assert!(on(&pts[pts.len() - 1], tb), "{name}: {} ends on {t}", f.id);
            }
        }
    }
}

#[test]
fn the_overlay_draws_counts_shares_and_an_instance_path() {
    let defs = drawn();
    let mut overlay = Overlay {
        badges: true,
        ..Overlay::default()
    };
    overlay.elements.insert(
        "check".into(),
        ElementMarks {
            active: 3,
            completed: 12,
            incidents: 1,
            passed: Some(Passed::Incident),
            title: Some("avg 2.0 s, p95 4.1 s".into()),
        },
    );
    overlay.elements.insert(
        "start".into(),
        ElementMarks {
            completed: 16,
            passed: Some(Passed::Taken),
            ..ElementMarks::default()
        },
    );
    overlay.flows.insert(
        "f1".into(),
        FlowMarks {
            share: Some(1.0),
            taken: true,
            title: None,
        },
    );
    overlay.flows.insert(
        "to-fail".into(),
        FlowMarks {
            share: Some(0.25),
            taken: false,
            title: Some("4 of 16 instances".into()),
        },
    );
    let svg = render::svg(&defs, &overlay);
    let doc = Document::parse(&svg).expect("well-formed XML");
    let badge = |id: &str, what: &str| -> (String, bool) {
        let b = doc
            .descendants()
            .find(|n| {
                n.attribute("data-badge") == Some(what) && n.attribute("data-for") == Some(id)
            })
            .unwrap_or_else(|| panic!("badge {what} on {id}"));
        let text = b
            .descendants()
            .find(|n| n.tag_name().name() == "text")
            .and_then(|t| t.text())
            .unwrap_or_default()
            .to_owned();
        (text, classes(b).contains(&"zero"))
    };
    assert_eq!(badge("check", "active"), ("3".into(), false));
    assert_eq!(badge("check", "completed"), ("12".into(), false));
    assert_eq!(badge("check", "incidents"), ("1".into(), false));
    assert_eq!(badge("start", "active"), ("0".into(), true));
    assert_eq!(badge("approve", "completed"), ("0".into(), true));
    assert!(classes(group(&doc, "check")).contains(&"incident"));
    assert!(classes(group(&doc, "start")).contains(&"taken"));
    assert!(classes(group(&doc, "f1")).contains(&"taken"));
    let share = group(&doc, "to-fail");
    assert_eq!(share.attribute("data-share"), Some("0.25"));
    let title = share
        .children()
        .find(|c| c.tag_name().name() == "title")
        .and_then(|t| t.text());
    assert_eq!(title, Some("4 of 16 instances"));
    let check_title = group(&doc, "check")
        .children()
        .find(|c| c.tag_name().name() == "title")
        .and_then(|t| t.text());
    assert_eq!(
        check_title,
        Some("Check the order <fast>\navg 2.0 s, p95 4.1 s")
    );
    // Without badges (the instance page), no counts are drawn.
    let plain = render::svg(&defs, &Overlay::default());
    assert!(!plain.contains("data-badge"));
}
