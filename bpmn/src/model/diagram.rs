//! Diagram interchange (BPMNDI): where the modeller drew each shape and edge. The monitor draws
//! from it; the engine never looks at it.

use std::collections::HashMap;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Bounds {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// The shape of one element (task, event, gateway, pool, lane).
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    pub id: String,
    /// The id of the BPMN element it draws.
    pub element: String,
    pub bounds: Bounds,
    pub label: Option<Bounds>,
    /// For subprocesses: drawn expanded (children visible) or collapsed.
    pub expanded: Option<bool>,
    /// For pools and lanes.
    pub horizontal: Option<bool>,
}

/// The path of a sequence flow, message flow or association.
#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    pub id: String,
    pub element: String,
    pub waypoints: Vec<Point>,
    pub label: Option<Bounds>,
}

/// All shapes and edges of a file, by the id of the element they draw.
#[derive(Clone, Debug, Default)]
pub struct Diagram {
    pub shapes: HashMap<String, Shape>,
    pub edges: HashMap<String, Edge>,
}

impl Diagram {
    pub fn is_empty(&self) -> bool {
        self.shapes.is_empty() && self.edges.is_empty()
    }
}
