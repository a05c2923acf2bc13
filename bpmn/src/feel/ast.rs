//! The syntax tree of a FEEL expression, as the parser builds it and the evaluator walks it.

use super::builtins::Builtin;
use super::value::Value;

#[derive(Clone, Debug)]
pub(crate) enum Expr {
    Literal(Value),
    /// A variable (or context entry, or iteration variable) by name.
    Name(String),
    /// `base.name`
    Path(Box<Expr>, String),
    /// `base[filter]`: an index when the filter is a number, else a predicate per item.
    Filter(Box<Expr>, Box<Expr>),
    Call {
        func: &'static Builtin,
        args: Args,
        col: usize,
    },
    List(Vec<Expr>),
    /// Entries may refer to the ones before them.
    Context(Vec<(String, Expr)>),
    Range {
        start: Option<Box<Expr>>,
        start_closed: bool,
        end: Option<Box<Expr>>,
        end_closed: bool,
    },
    Negate(Box<Expr>),
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    Compare(CmpOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Between(Box<Expr>, Box<Expr>, Box<Expr>),
    In(Box<Expr>, Vec<UnaryTest>),
    InstanceOf(Box<Expr>, TypeName),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    For(Vec<(String, Iteration)>, Box<Expr>),
    Quantified {
        every: bool,
        bindings: Vec<(String, Expr)>,
        condition: Box<Expr>,
    },
}

#[derive(Clone, Debug)]
pub(crate) enum Args {
    Positional(Vec<Expr>),
    Named(Vec<(String, Expr)>),
}

/// What a `for` variable runs over: a list, or the integers `from..to`.
#[derive(Clone, Debug)]
pub(crate) enum Iteration {
    List(Expr),
    Numbers(Expr, Expr),
}

/// One positive unary test after `in`.
#[derive(Clone, Debug)]
pub(crate) enum UnaryTest {
    /// `< 5`, `>= x`, `= "a"`, `!= 3`
    Compare(CmpOp, Expr),
    /// A value (equal to it), a range (inside it) or a list (one of its items).
    Value(Expr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TypeName {
    Any,
    Null,
    Boolean,
    Number,
    String,
    List,
    Context,
    Date,
    Time,
    DateTime,
    DaysTimeDuration,
    YearsMonthsDuration,
    Range,
}

impl TypeName {
    pub(crate) fn parse(name: &str) -> Option<TypeName> {
        Some(match name {
            "Any" => TypeName::Any,
            "Null" => TypeName::Null,
            "boolean" => TypeName::Boolean,
            "number" => TypeName::Number,
            "string" => TypeName::String,
            "list" => TypeName::List,
            "context" => TypeName::Context,
            "date" => TypeName::Date,
            "time" => TypeName::Time,
            "date and time" => TypeName::DateTime,
            "days and time duration" | "dayTimeDuration" => TypeName::DaysTimeDuration,
            "years and months duration" | "yearMonthDuration" => TypeName::YearsMonthsDuration,
            "range" => TypeName::Range,
            _ => return None,
        })
    }

    pub(crate) fn matches(self, v: &Value) -> bool {
        match self {
            TypeName::Any => !v.is_null(),
            TypeName::Null => v.is_null(),
            TypeName::Boolean => matches!(v, Value::Bool(_)),
            TypeName::Number => matches!(v, Value::Number(_)),
            TypeName::String => matches!(v, Value::String(_)),
            TypeName::List => matches!(v, Value::List(_)),
            TypeName::Context => matches!(v, Value::Context(_)),
            TypeName::Date => matches!(v, Value::Date(_)),
            TypeName::Time => matches!(v, Value::Time(_)),
            TypeName::DateTime => matches!(v, Value::DateTime(_)),
            TypeName::DaysTimeDuration => matches!(v, Value::Duration(_)),
            TypeName::YearsMonthsDuration => matches!(v, Value::YearsMonths(_)),
            TypeName::Range => matches!(v, Value::Range(_)),
        }
    }
}
