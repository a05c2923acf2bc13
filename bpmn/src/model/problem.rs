//! Why a model cannot run: one [`Problem`] per fault, pointing at the element and its line.

use std::fmt;

use super::Pos;

/// A reason a process cannot run, with where it is in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub pos: Pos,
    /// The id of the element (or process, or flow) at fault.
    pub element: String,
    pub message: String,
}

impl Problem {
    pub fn new(kind: ProblemKind, pos: Pos, element: &str, message: impl Into<String>) -> Problem {
        Problem {
            kind,
            pos,
            element: element.to_owned(),
            message: message.into(),
        }
    }
}

/// `LINE:COL: element ID: what is wrong`, the form `flowmesh validate` prints after the file name.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: element {}: {}",
            self.pos.line, self.pos.col, self.element, self.message
        )
    }
}

/// The family a problem belongs to, for counting problems across many files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProblemKind {
    NoProcess,
    NotExecutable,
    /// An element flowmesh does not run (yet).
    Unsupported,
    MissingJobType,
    MissingMessage,
    MissingCorrelationKey,
    InvalidTimer,
    InvalidExpression,
    MissingCondition,
    InvalidReference,
    InvalidStructure,
    MissingError,
    DuplicateId,
    /// A `flowmesh:http` binding that cannot be matched.
    InvalidBinding,
}

impl ProblemKind {
    /// A short stable name, as the corpus report prints it.
    pub fn name(self) -> &'static str {
        match self {
            ProblemKind::NoProcess => "no process",
            ProblemKind::NotExecutable => "not marked executable",
            ProblemKind::Unsupported => "unsupported element",
            ProblemKind::MissingJobType => "task without job type",
            ProblemKind::MissingMessage => "message without name",
            ProblemKind::MissingCorrelationKey => "message without correlation key",
            ProblemKind::InvalidTimer => "invalid timer",
            ProblemKind::InvalidExpression => "invalid expression",
            ProblemKind::InvalidBinding => "invalid HTTP binding",
            ProblemKind::MissingCondition => "gateway flow without condition",
            ProblemKind::InvalidReference => "dangling reference",
            ProblemKind::InvalidStructure => "invalid structure",
            ProblemKind::MissingError => "error without code",
            ProblemKind::DuplicateId => "duplicate id",
        }
    }
}
