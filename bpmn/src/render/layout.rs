//! Where every shape and edge goes: the file's diagram interchange data where it has it, else a
//! left-to-right layered layout computed from the sequence flows.

use std::collections::{HashMap, HashSet};

use crate::model::{Bounds, Definitions, ElementIdx, Kind, Point, Process};

/// Positions of everything drawn, by BPMN element id.
#[derive(Debug, Default)]
pub struct Layout {
    pub shapes: HashMap<String, Bounds>,
    pub labels: HashMap<String, Bounds>,
    pub edges: HashMap<String, Vec<Point>>,
    /// Subprocesses drawn collapsed (their children are not drawn).
    pub collapsed: HashSet<String>,
    /// Pools drawn vertically.
    pub vertical: HashSet<String>,
}

const TASK: (f64, f64) = (100.0, 80.0);
const EVENT: f64 = 36.0;
const GATEWAY: f64 = 50.0;
const COLUMN: f64 = 150.0;
const ROW: f64 = 110.0;
const MARGIN: f64 = 40.0;

impl Layout {
    /// The file's own layout, completed by an automatic one for processes it does not draw.
    pub fn of(defs: &Definitions) -> Layout {
        let mut layout = Layout::default();
        for (id, s) in &defs.diagram.shapes {
            layout.shapes.insert(id.clone(), s.bounds);
            if let Some(l) = s.label {
                layout.labels.insert(id.clone(), l);
            }
            if s.expanded == Some(false) {
                layout.collapsed.insert(id.clone());
            }
            if s.horizontal == Some(false) {
                layout.vertical.insert(id.clone());
            }
        }
        for (id, e) in &defs.diagram.edges {
            if e.waypoints.len() >= 2 {
                layout.edges.insert(id.clone(), e.waypoints.clone());
            }
            if let Some(l) = e.label {
                layout.labels.insert(id.clone(), l);
            }
        }
        let mut top = layout.bottom().map_or(MARGIN, |b| b + 2.0 * MARGIN);
        for p in &defs.processes {
            let drawn = p
                .elements
                .iter()
                .skip(1)
                .any(|e| layout.shapes.contains_key(&e.id));
            if !drawn && p.elements.len() > 1 {
                top = layout.auto(p, top) + 2.0 * MARGIN;
            }
        }
        layout
    }

    fn bottom(&self) -> Option<f64> {
        self.shapes
            .values()
            .map(|b| b.y + b.height)
            .reduce(f64::max)
    }

    /// Lays out the top level of one process from `top` down; subprocesses are drawn collapsed.
    /// Returns the lowest y used.
    fn auto(&mut self, p: &Process, top: f64) -> f64 {
        let nodes: Vec<ElementIdx> = p.root().children.clone();
        let attached = |i: ElementIdx| matches!(p.element(i).kind, Kind::Boundary(_));
        let host = |i: ElementIdx| match &p.element(i).kind {
            Kind::Boundary(b) => Some(b.attached_to),
            _ => None,
        };
        // Rank: the longest path from a source over forward edges (back edges found by a
        // depth-first walk are ignored, so loops do not stretch the layout forever).
        let mut rank: HashMap<ElementIdx, usize> = HashMap::new();
        let mut order: Vec<ElementIdx> = Vec::new();
        let mut state: HashMap<ElementIdx, u8> = HashMap::new();
        let mut back: HashSet<u32> = HashSet::new();
        let sources: Vec<ElementIdx> = nodes
            .iter()
            .copied()
            .filter(|&i| !attached(i) && p.element(i).incoming.is_empty())
            .chain(nodes.iter().copied())
            .collect();
        for s in sources {
            if state.contains_key(&s) || attached(s) {
                continue;
            }
            // Iterative DFS: (node, next outgoing index).
            let mut stack: Vec<(ElementIdx, usize)> = vec![(s, 0)];
            state.insert(s, 1);
            while let Some(&mut (n, ref mut next)) = stack.last_mut() {
                let outs = successors(p, n);
                if *next < outs.len() {
                    let (flow, to) = outs[*next];
                    *next += 1;
                    match state.get(&to) {
                        Some(1) => {
                            back.insert(flow);
                        }
                        Some(_) => {}
                        None => {
                            state.insert(to, 1);
                            stack.push((to, 0));
                        }
                    }
                } else {
                    state.insert(n, 2);
                    order.push(n);
                    stack.pop();
                }
            }
        }
        order.reverse(); // a topological order of the forward edges
        for &n in &order {
            let r = *rank.entry(n).or_insert(0);
            for (flow, to) in successors(p, n) {
                if back.contains(&flow) {
                    continue;
                }
                let e = rank.entry(to).or_insert(0);
                *e = (*e).max(r + 1);
            }
        }
        // Rows: in order of first appearance within each rank.
        let mut rows: HashMap<usize, usize> = HashMap::new();
        let mut bottom = top;
        let mut placed: Vec<(ElementIdx, usize, usize)> = Vec::new();
        for &n in &order {
            if attached(n) {
                continue;
            }
            let r = rank[&n];
            let row = rows.entry(r).or_insert(0);
            placed.push((n, r, *row));
            *row += 1;
        }
        placed.sort_by_key(|&(n, r, row)| (r, row, n));
        for (n, r, row) in placed {
            let el = p.drawn(n);
            let (w, h) = size(el.tag);
            let cx = MARGIN + 60.0 + r as f64 * COLUMN;
            let cy = top + ROW / 2.0 + row as f64 * ROW;
            let b = Bounds {
                x: cx - w / 2.0,
                y: cy - h / 2.0,
                width: w,
                height: h,
            };
            bottom = bottom.max(b.y + b.height);
            if el.is_container() {
                self.collapsed.insert(el.id.clone());
            }
            self.shapes.insert(el.id.clone(), b);
        }
        // Boundary events sit on the bottom edge of their host, spread along it.
        let mut on_host: HashMap<ElementIdx, usize> = HashMap::new();
        for &n in &nodes {
            let Some(h) = host(n) else { continue };
            let Some(hb) = self.shapes.get(&p.element(h).id).copied() else {
                continue;
            };
            let k = on_host.entry(h).or_insert(0);
            let x = hb.x + hb.width - EVENT / 2.0 - 14.0 - *k as f64 * (EVENT + 6.0);
            *k += 1;
            self.shapes.insert(
                p.element(n).id.clone(),
                Bounds {
                    x: x - EVENT / 2.0,
                    y: hb.y + hb.height - EVENT / 2.0,
                    width: EVENT,
                    height: EVENT,
                },
            );
        }
        for f in &p.flows {
            let (Some(a), Some(b)) = (
                self.shapes.get(&p.element(f.source).id).copied(),
                self.shapes.get(&p.element(f.target).id).copied(),
            ) else {
                continue;
            };
            let route = if attached(f.source) {
                let start = Point {
                    x: a.x + a.width / 2.0,
                    y: a.y + a.height,
                };
                let end = Point {
                    x: b.x,
                    y: b.y + b.height / 2.0,
                };
                vec![
                    start,
                    Point {
                        x: start.x,
                        y: end.y.max(start.y + 20.0),
                    },
                    Point {
                        x: end.x,
                        y: end.y.max(start.y + 20.0),
                    },
                    end,
                ]
            } else if b.x > a.x {
                let start = Point {
                    x: a.x + a.width,
                    y: a.y + a.height / 2.0,
                };
                let end = Point {
                    x: b.x,
                    y: b.y + b.height / 2.0,
                };
                if (start.y - end.y).abs() < 0.5 {
                    vec![start, end]
                } else {
                    let mid = start.x + 20.0;
                    vec![
                        start,
                        Point { x: mid, y: start.y },
                        Point { x: mid, y: end.y },
                        end,
                    ]
                }
            } else {
                // A loop back: out of the bottom, under everything between, into the bottom.
                let under = a.y.max(b.y) + a.height.max(b.height) + 20.0;
                let start = Point {
                    x: a.x + a.width / 2.0,
                    y: a.y + a.height,
                };
                let end = Point {
                    x: b.x + b.width / 2.0,
                    y: b.y + b.height,
                };
                bottom = bottom.max(under);
                vec![
                    start,
                    Point {
                        x: start.x,
                        y: under,
                    },
                    Point { x: end.x, y: under },
                    end,
                ]
            };
            self.edges.insert(f.id.clone(), route);
        }
        bottom
    }
}

fn successors(p: &Process, n: ElementIdx) -> Vec<(u32, ElementIdx)> {
    let el = p.element(n);
    let mut out: Vec<(u32, ElementIdx)> = el
        .outgoing
        .iter()
        .map(|&f| (f.0, p.flow(f).target))
        .collect();
    // A boundary event's successors follow its host, so they rank after it.
    for &b in &el.boundaries {
        out.extend(
            p.element(b)
                .outgoing
                .iter()
                .map(|&f| (u32::MAX - f.0, p.flow(f).target)),
        );
    }
    out
}

/// The size of an element by its BPMN tag (unsupported elements are drawn too).
fn size(tag: &str) -> (f64, f64) {
    if tag.ends_with("Event") {
        (EVENT, EVENT)
    } else if tag.ends_with("Gateway") {
        (GATEWAY, GATEWAY)
    } else {
        TASK
    }
}
