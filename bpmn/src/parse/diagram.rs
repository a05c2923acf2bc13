//! Reads BPMNDI: shape bounds, edge waypoints and label bounds, keyed by the element they draw.

use roxmltree::Node;

use super::xml::{BPMNDI, DC, DI, attr, is_in, strip_prefix};
use crate::model::{Bounds, Diagram, Edge, Point, Shape};

pub(crate) fn read(definitions: Node<'_, '_>) -> Diagram {
    let mut diagram = Diagram::default();
    for d in definitions
        .children()
        .filter(|c| is_in(*c, BPMNDI, "BPMNDiagram"))
    {
        for plane in d.children().filter(|c| is_in(*c, BPMNDI, "BPMNPlane")) {
            for item in plane.children().filter(|c| c.is_element()) {
                if is_in(item, BPMNDI, "BPMNShape") {
                    if let Some(shape) = shape(item) {
                        diagram.shapes.entry(shape.element.clone()).or_insert(shape);
                    }
                } else if is_in(item, BPMNDI, "BPMNEdge")
                    && let Some(edge) = edge(item)
                {
                    diagram.edges.entry(edge.element.clone()).or_insert(edge);
                }
            }
        }
    }
    diagram
}

fn shape(node: Node<'_, '_>) -> Option<Shape> {
    let element = strip_prefix(attr(node, "bpmnElement")?).to_owned();
    let bounds = node
        .children()
        .find(|c| is_in(*c, DC, "Bounds"))
        .and_then(bounds)?;
    Some(Shape {
        id: attr(node, "id").unwrap_or_default().to_owned(),
        element,
        bounds,
        label: label(node),
        expanded: attr(node, "isExpanded").map(|v| v.eq_ignore_ascii_case("true")),
        horizontal: attr(node, "isHorizontal").map(|v| v.eq_ignore_ascii_case("true")),
    })
}

fn edge(node: Node<'_, '_>) -> Option<Edge> {
    let element = strip_prefix(attr(node, "bpmnElement")?).to_owned();
    let waypoints = node
        .children()
        .filter(|c| is_in(*c, DI, "waypoint"))
        .filter_map(|w| {
            Some(Point {
                x: number(w, "x")?,
                y: number(w, "y")?,
            })
        })
        .collect();
    Some(Edge {
        id: attr(node, "id").unwrap_or_default().to_owned(),
        element,
        waypoints,
        label: label(node),
    })
}

fn label(node: Node<'_, '_>) -> Option<Bounds> {
    node.children()
        .find(|c| is_in(*c, BPMNDI, "BPMNLabel"))
        .and_then(|l| l.children().find(|c| is_in(*c, DC, "Bounds")))
        .and_then(bounds)
}

fn bounds(node: Node<'_, '_>) -> Option<Bounds> {
    Some(Bounds {
        x: number(node, "x")?,
        y: number(node, "y")?,
        width: number(node, "width")?,
        height: number(node, "height")?,
    })
}

fn number(node: Node<'_, '_>, name: &str) -> Option<f64> {
    attr(node, name)?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}
