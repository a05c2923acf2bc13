//! FEEL, the expression language of BPMN and Zeebe: the subset Zeebe users write.
//!
//! An expression is compiled once ([`Expression::parse`], at deployment, so a typo is found by
//! `flowmesh validate`) and evaluated many times against the variables in scope. Evaluation never
//! reads a clock: `now()` is the time the engine passes in.

mod ast;
mod builtins;
mod eval;
mod lexer;
mod parser;
pub mod temporal;
mod value;

use jiff::Timestamp;

pub use builtins::names as builtin_names;
pub use eval::{NoVariables, Variables};
pub use value::{Bound, Context, DateTimeValue, LocalTime, Range, Value};

use ast::{Args, Expr, Iteration, UnaryTest};

/// A FEEL syntax or evaluation error, with the 1-based character column it points at.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at column {column})")]
pub struct Error {
    pub column: usize,
    pub message: String,
}

impl Error {
    pub(crate) fn at(column: usize, message: impl Into<String>) -> Error {
        Error {
            column,
            message: message.into(),
        }
    }
}

/// A compiled FEEL expression.
#[derive(Clone, Debug)]
pub struct Expression {
    source: String,
    expr: Expr,
}

/// The result of an evaluation, with the reasons for any nulls met on the way.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluated {
    pub value: Value,
    pub warnings: Vec<String>,
}

impl Expression {
    /// Compiles FEEL source (without Zeebe's leading `=`).
    pub fn parse(source: &str) -> Result<Expression, Error> {
        let tokens = lexer::tokenize(source)?;
        let expr = parser::parse(tokens)?;
        check(&expr)?;
        Ok(Expression {
            source: source.to_owned(),
            expr,
        })
    }

    /// An expression that is a fixed value (a static attribute in a model).
    pub fn constant(value: Value) -> Expression {
        Expression {
            source: value.to_string(),
            expr: Expr::Literal(value),
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The variable names the expression reads at its top level (`a` in `a.b + c`), for tooling.
    pub fn is_constant(&self) -> bool {
        matches!(self.expr, Expr::Literal(_))
    }

    pub fn evaluate(&self, vars: &dyn Variables, now: Timestamp) -> Result<Evaluated, Error> {
        let mut ev = eval::Evaluator::new(now);
        let value = ev.run(&self.expr, vars)?;
        Ok(Evaluated {
            value,
            warnings: ev.warnings,
        })
    }
}

/// Evaluates FEEL source once: for tests, the CLI and one-off use.
pub fn evaluate(source: &str, vars: &dyn Variables, now: Timestamp) -> Result<Value, Error> {
    Ok(Expression::parse(source)?.evaluate(vars, now)?.value)
}

/// Compile-time checks the parser leaves out: argument counts and named parameters.
fn check(expr: &Expr) -> Result<(), Error> {
    match expr {
        Expr::Literal(_) | Expr::Name(_) => Ok(()),
        Expr::Path(e, _) | Expr::Negate(e) | Expr::InstanceOf(e, _) => check(e),
        Expr::Filter(a, b)
        | Expr::Arith(_, a, b)
        | Expr::Compare(_, a, b)
        | Expr::And(a, b)
        | Expr::Or(a, b) => {
            check(a)?;
            check(b)
        }
        Expr::Between(a, b, c) | Expr::If(a, b, c) => {
            check(a)?;
            check(b)?;
            check(c)
        }
        Expr::List(items) => items.iter().try_for_each(check),
        Expr::Context(entries) => entries.iter().try_for_each(|(_, e)| check(e)),
        Expr::Range { start, end, .. } => {
            if let Some(s) = start {
                check(s)?;
            }
            if let Some(e) = end {
                check(e)?;
            }
            Ok(())
        }
        Expr::In(v, tests) => {
            check(v)?;
            tests.iter().try_for_each(|t| match t {
                UnaryTest::Compare(_, e) | UnaryTest::Value(e) => check(e),
            })
        }
        Expr::For(bindings, body) => {
            for (_, it) in bindings {
                match it {
                    Iteration::List(e) => check(e)?,
                    Iteration::Numbers(a, b) => {
                        check(a)?;
                        check(b)?;
                    }
                }
            }
            check(body)
        }
        Expr::Quantified {
            bindings,
            condition,
            ..
        } => {
            bindings.iter().try_for_each(|(_, e)| check(e))?;
            check(condition)
        }
        Expr::Call { func, args, col } => {
            let given = match args {
                Args::Positional(exprs) => {
                    exprs.iter().try_for_each(check)?;
                    exprs.len()
                }
                Args::Named(named) => {
                    for (name, e) in named {
                        if !func.params.contains(&name.as_str()) {
                            return Err(Error::at(
                                *col,
                                format!(
                                    "{}() has no parameter '{name}'; its parameters are: {}",
                                    func.name,
                                    func.params.join(", ")
                                ),
                            ));
                        }
                        check(e)?;
                    }
                    let provided = func.params[..func.required]
                        .iter()
                        .filter(|p| named.iter().any(|(n, _)| n == *p))
                        .count();
                    if provided < func.required {
                        return Err(Error::at(
                            *col,
                            format!(
                                "{}() needs the parameters: {}",
                                func.name,
                                func.params[..func.required].join(", ")
                            ),
                        ));
                    }
                    return Ok(());
                }
            };
            if given < func.required {
                return Err(Error::at(
                    *col,
                    format!(
                        "{}() needs at least {} argument(s), got {given}",
                        func.name, func.required
                    ),
                ));
            }
            if !func.variadic && given > func.params.len() {
                return Err(Error::at(
                    *col,
                    format!(
                        "{}() takes at most {} argument(s), got {given}",
                        func.name,
                        func.params.len()
                    ),
                ));
            }
            Ok(())
        }
    }
}

/// Convenience for tests: the time zero of the engine clock.
pub fn epoch() -> Timestamp {
    Timestamp::UNIX_EPOCH
}
