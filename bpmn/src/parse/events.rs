//! Event definitions: what triggers a catch event or what a throw event does, as written in the
//! XML (`messageEventDefinition`, `timerEventDefinition`, ...), before references are resolved.

use roxmltree::Node;

use super::xml::{BPMN, XSI, attr, bool_attr, ref_attr, text};
use crate::model::{Looping, Marker, Notation, TimerKind};

/// One event definition of an event element.
pub(crate) enum EventDef<'a> {
    Message {
        message_ref: Option<&'a str>,
    },
    Timer {
        kind: Option<TimerKind>,
        text: Option<&'a str>,
        node: Node<'a, 'a>,
        ambiguous: bool,
    },
    Error {
        error_ref: Option<&'a str>,
    },
    Terminate,
    Compensate {
        activity_ref: Option<&'a str>,
    },
    Escalation {
        escalation_ref: Option<&'a str>,
    },
    Link {
        name: Option<&'a str>,
    },
    Conditional {
        /// The text of its `bpmn:condition`, and that element (for positions).
        condition: Option<(&'a str, Node<'a, 'a>)>,
    },
    Signal {
        signal_ref: Option<&'a str>,
    },
    /// Cancel: read, not run (yet).
    Other(&'static str),
}

/// The definitions of an event, in document order. Several mean a "multiple" event.
pub(crate) fn definitions<'a>(event: Node<'a, 'a>) -> Vec<EventDef<'a>> {
    let mut out = Vec::new();
    for c in event
        .children()
        .filter(|c| c.is_element() && c.tag_name().namespace() == Some(BPMN))
    {
        let def = match c.tag_name().name() {
            "messageEventDefinition" => EventDef::Message {
                message_ref: ref_attr(c, "messageRef"),
            },
            "timerEventDefinition" => timer(c),
            "errorEventDefinition" => EventDef::Error {
                error_ref: ref_attr(c, "errorRef"),
            },
            "terminateEventDefinition" => EventDef::Terminate,
            "compensateEventDefinition" => {
                // waitForCompletion="false" is not supported by Zeebe either; it always waits.
                let _ = bool_attr(c, "waitForCompletion", true);
                EventDef::Compensate {
                    activity_ref: ref_attr(c, "activityRef"),
                }
            }
            "signalEventDefinition" => EventDef::Signal {
                signal_ref: ref_attr(c, "signalRef"),
            },
            "escalationEventDefinition" => EventDef::Escalation {
                escalation_ref: ref_attr(c, "escalationRef"),
            },
            "conditionalEventDefinition" => EventDef::Conditional {
                condition: c
                    .children()
                    .find(|n| n.is_element() && n.tag_name().name() == "condition")
                    .and_then(|n| Some((text(n)?, n))),
            },
            "linkEventDefinition" => EventDef::Link {
                name: attr(c, "name").filter(|n| !n.trim().is_empty()),
            },
            "cancelEventDefinition" => EventDef::Other("cancel event"),
            _ => continue,
        };
        out.push(def);
    }
    // `eventDefinitionRef` points at a definition declared at the top level; rare, not run.
    if event
        .children()
        .any(|c| c.is_element() && c.tag_name().name() == "eventDefinitionRef")
    {
        out.push(EventDef::Other("event with eventDefinitionRef"));
    }
    out
}

fn timer<'a>(node: Node<'a, 'a>) -> EventDef<'a> {
    let mut found: Vec<(TimerKind, Option<&'a str>)> = Vec::new();
    for c in node
        .children()
        .filter(|c| c.is_element() && c.tag_name().namespace() == Some(BPMN))
    {
        let kind = match c.tag_name().name() {
            "timeDuration" => TimerKind::Duration,
            "timeDate" => TimerKind::Date,
            "timeCycle" => TimerKind::Cycle,
            _ => continue,
        };
        // The xsi:type is always tFormalExpression in practice; the text is what counts.
        let _ = c.attribute((XSI, "type"));
        found.push((kind, text(c)));
    }
    let ambiguous = found.len() > 1;
    match found.first() {
        Some((kind, t)) => EventDef::Timer {
            kind: Some(*kind),
            text: *t,
            node,
            ambiguous,
        },
        None => EventDef::Timer {
            kind: None,
            text: None,
            node,
            ambiguous,
        },
    }
}

/// `cancelActivity` of a boundary event (default true: interrupting).
pub(crate) fn interrupting(boundary: Node<'_, '_>) -> bool {
    bool_attr(boundary, "cancelActivity", true)
}

/// How an element is drawn: its event marker, interrupting or not, event subprocess, loop.
pub(crate) fn notation(node: Node<'_, '_>) -> Notation {
    let tag = node.tag_name().name();
    let markers: Vec<Marker> = node
        .children()
        .filter(|c| c.is_element() && c.tag_name().namespace() == Some(BPMN))
        .filter_map(|c| {
            Some(match c.tag_name().name() {
                "messageEventDefinition" => Marker::Message,
                "timerEventDefinition" => Marker::Timer,
                "errorEventDefinition" => Marker::Error,
                "escalationEventDefinition" => Marker::Escalation,
                "signalEventDefinition" => Marker::Signal,
                "conditionalEventDefinition" => Marker::Conditional,
                "linkEventDefinition" => Marker::Link,
                "compensateEventDefinition" => Marker::Compensation,
                "terminateEventDefinition" => Marker::Terminate,
                "cancelEventDefinition" => Marker::Cancel,
                _ => return None,
            })
        })
        .collect();
    let marker = match markers.as_slice() {
        [] => Marker::None,
        [one] => *one,
        _ => Marker::Multiple,
    };
    let interrupting = match tag {
        "boundaryEvent" => interrupting(node),
        "startEvent" => bool_attr(node, "isInterrupting", true),
        _ => true,
    };
    let looping = node
        .children()
        .filter(|c| c.is_element() && c.tag_name().namespace() == Some(BPMN))
        .find_map(|c| match c.tag_name().name() {
            "multiInstanceLoopCharacteristics" => Some(if bool_attr(c, "isSequential", false) {
                Looping::Sequential
            } else {
                Looping::Parallel
            }),
            "standardLoopCharacteristics" => Some(Looping::Standard),
            _ => None,
        });
    Notation {
        marker,
        interrupting,
        event_subprocess: tag == "subProcess" && bool_attr(node, "triggeredByEvent", false),
        looping,
    }
}
