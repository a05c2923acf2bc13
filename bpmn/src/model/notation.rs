//! How an element is drawn, as the file says it, whether or not the engine runs it: the event
//! trigger, interrupting or not, event subprocess, loop markers. Only the monitor reads it.

/// The trigger or result symbol inside an event's circle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Marker {
    #[default]
    None,
    Message,
    Timer,
    Error,
    Escalation,
    Signal,
    Conditional,
    Link,
    Compensation,
    Terminate,
    Cancel,
    /// More than one event definition.
    Multiple,
}

impl Marker {
    pub fn name(self) -> &'static str {
        match self {
            Marker::None => "none",
            Marker::Message => "message",
            Marker::Timer => "timer",
            Marker::Error => "error",
            Marker::Escalation => "escalation",
            Marker::Signal => "signal",
            Marker::Conditional => "conditional",
            Marker::Link => "link",
            Marker::Compensation => "compensation",
            Marker::Terminate => "terminate",
            Marker::Cancel => "cancel",
            Marker::Multiple => "multiple",
        }
    }
}

/// A multi-instance or loop marker under an activity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Looping {
    Parallel,
    Sequential,
    Standard,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notation {
    pub marker: Marker,
    /// Boundary events with `cancelActivity="false"` and non-interrupting event-subprocess
    /// starts are drawn dashed.
    pub interrupting: bool,
    /// A subprocess with `triggeredByEvent="true"`.
    pub event_subprocess: bool,
    pub looping: Option<Looping>,
}

impl Default for Notation {
    fn default() -> Notation {
        Notation {
            marker: Marker::None,
            interrupting: true,
            event_subprocess: false,
            looping: None,
        }
    }
}
