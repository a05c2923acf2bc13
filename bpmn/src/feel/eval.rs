//! Walks an [`Expr`] against the variables in scope and computes its [`Value`].
//!
//! FEEL's null semantics: a missing variable, a path into nothing or an operation on the wrong
//! types gives null, and the evaluator notes why, so that an incident can say
//! "expected a boolean but found null (no variable 'amount')". Evaluation has a step budget, so a
//! hostile expression (`for i in 1..1000000000 return i`) ends with an error, not a hang.

use std::borrow::Cow;
use std::cmp::Ordering;

use jiff::Timestamp;
use rust_decimal::Decimal;
use rust_decimal::prelude::{MathematicalOps, ToPrimitive};

use super::Error;
use super::ast::{Args, ArithOp, CmpOp, Expr, Iteration, UnaryTest};
use super::builtins::{self, Builtin, Call};
use super::temporal;
use super::value::{Bound, Context, Range, Value};

/// Where variables come from: process scopes, a JSON document, or nothing.
pub trait Variables {
    fn get(&self, name: &str) -> Option<Cow<'_, Value>>;
}

impl Variables for Context {
    fn get(&self, name: &str) -> Option<Cow<'_, Value>> {
        std::collections::BTreeMap::get(self, name).map(Cow::Borrowed)
    }
}

/// No variables at all.
pub struct NoVariables;

impl Variables for NoVariables {
    fn get(&self, _: &str) -> Option<Cow<'_, Value>> {
        None
    }
}

/// Most evaluation steps one expression may take.
const STEP_BUDGET: u64 = 2_000_000;
/// Most items a list built by an expression may hold.
const MAX_LIST_LEN: usize = 1_000_000;
/// Reasons for nulls kept for the error message; more would only repeat.
const MAX_WARNINGS: usize = 4;

pub(crate) struct Evaluator {
    pub(crate) now: Timestamp,
    steps: u64,
    pub(crate) warnings: Vec<String>,
}

enum Frame<'a> {
    Root(&'a dyn Variables),
    Bind {
        name: &'a str,
        value: &'a Value,
        parent: &'a Frame<'a>,
    },
    Entries {
        entries: &'a Context,
        parent: &'a Frame<'a>,
    },
}

impl<'a> Frame<'a> {
    fn lookup(&self, name: &str) -> Option<Cow<'a, Value>> {
        match self {
            Frame::Root(vars) => vars.get(name),
            Frame::Bind {
                name: n,
                value,
                parent,
            } => {
                if *n == name {
                    Some(Cow::Borrowed(*value))
                } else {
                    parent.lookup(name)
                }
            }
            Frame::Entries { entries, parent } => {
                match std::collections::BTreeMap::get(*entries, name) {
                    Some(v) => Some(Cow::Borrowed(v)),
                    None => parent.lookup(name),
                }
            }
        }
    }
}

impl Evaluator {
    pub(crate) fn new(now: Timestamp) -> Evaluator {
        Evaluator {
            now,
            steps: 0,
            warnings: Vec::new(),
        }
    }

    pub(crate) fn run(&mut self, expr: &Expr, vars: &dyn Variables) -> Result<Value, Error> {
        self.eval(expr, &Frame::Root(vars))
    }

    fn warn(&mut self, why: impl FnOnce() -> String) {
        if self.warnings.len() < MAX_WARNINGS {
            let w = why();
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
    }

    fn step(&mut self) -> Result<(), Error> {
        self.steps += 1;
        if self.steps > STEP_BUDGET {
            Err(Error::at(
                1,
                format!("expression took more than {STEP_BUDGET} steps"),
            ))
        } else {
            Ok(())
        }
    }

    fn eval(&mut self, expr: &Expr, frame: &Frame<'_>) -> Result<Value, Error> {
        self.step()?;
        match expr {
            Expr::Literal(v) => Ok(v.clone()),
            Expr::Name(name) => match frame.lookup(name) {
                Some(v) => Ok(v.into_owned()),
                None => {
                    self.warn(|| format!("no variable found with name '{name}'"));
                    Ok(Value::Null)
                }
            },
            Expr::Path(base, name) => self.path(base, name, frame),
            Expr::Filter(base, filter) => self.filter(base, filter, frame),
            Expr::Call { func, args, col } => self.call(func, args, *col, frame),
            Expr::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.eval(item, frame)?);
                }
                Ok(Value::List(out))
            }
            Expr::Context(entries) => {
                let mut ctx = Context::new();
                for (key, value_expr) in entries {
                    let value = {
                        let inner = Frame::Entries {
                            entries: &ctx,
                            parent: frame,
                        };
                        self.eval(value_expr, &inner)?
                    };
                    ctx.insert(key.clone(), value);
                }
                Ok(Value::Context(ctx))
            }
            Expr::Range {
                start,
                start_closed,
                end,
                end_closed,
            } => {
                let bound = |this: &mut Self,
                             e: &Option<Box<Expr>>,
                             closed: bool|
                 -> Result<Bound, Error> {
                    Ok(match e {
                        None => Bound::Unbounded,
                        Some(e) => {
                            let v = this.eval(e, frame)?;
                            if closed {
                                Bound::Closed(v)
                            } else {
                                Bound::Open(v)
                            }
                        }
                    })
                };
                let start = bound(self, start, *start_closed)?;
                let end = bound(self, end, *end_closed)?;
                Ok(Value::Range(Box::new(Range { start, end })))
            }
            Expr::Negate(inner) => Ok(match self.eval(inner, frame)? {
                Value::Number(n) => Value::Number(-n),
                Value::Duration(d) => d.checked_neg().map(Value::Duration).unwrap_or(Value::Null),
                Value::YearsMonths(m) => Value::YearsMonths(-m),
                other => {
                    self.warn(|| format!("cannot negate a {}", other.type_name()));
                    Value::Null
                }
            }),
            Expr::Arith(op, a, b) => {
                let a = self.eval(a, frame)?;
                let b = self.eval(b, frame)?;
                Ok(self.arith(*op, &a, &b))
            }
            Expr::Compare(op, a, b) => {
                let a = self.eval(a, frame)?;
                let b = self.eval(b, frame)?;
                Ok(compare(*op, &a, &b))
            }
            Expr::And(a, b) => {
                let a = self.eval(a, frame)?;
                if a == Value::Bool(false) {
                    return Ok(a);
                }
                let b = self.eval(b, frame)?;
                Ok(match (a, b) {
                    (_, Value::Bool(false)) => Value::Bool(false),
                    (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
                    _ => Value::Null,
                })
            }
            Expr::Or(a, b) => {
                let a = self.eval(a, frame)?;
                if a == Value::Bool(true) {
                    return Ok(a);
                }
                let b = self.eval(b, frame)?;
                Ok(match (a, b) {
                    (_, Value::Bool(true)) => Value::Bool(true),
                    (Value::Bool(false), Value::Bool(false)) => Value::Bool(false),
                    _ => Value::Null,
                })
            }
            Expr::Between(v, low, high) => {
                let v = self.eval(v, frame)?;
                let low = self.eval(low, frame)?;
                let high = self.eval(high, frame)?;
                Ok(match (v.feel_cmp(&low), v.feel_cmp(&high)) {
                    (Some(l), Some(h)) => {
                        Value::Bool(l != Ordering::Less && h != Ordering::Greater)
                    }
                    _ => Value::Null,
                })
            }
            Expr::In(v, tests) => {
                let v = self.eval(v, frame)?;
                let mut saw_null = false;
                for test in tests {
                    match self.unary_test(&v, test, frame)? {
                        Some(true) => return Ok(Value::Bool(true)),
                        Some(false) => {}
                        None => saw_null = true,
                    }
                }
                Ok(if saw_null {
                    Value::Null
                } else {
                    Value::Bool(false)
                })
            }
            Expr::InstanceOf(v, ty) => {
                let v = self.eval(v, frame)?;
                Ok(Value::Bool(ty.matches(&v)))
            }
            Expr::If(cond, then, otherwise) => {
                if self.eval(cond, frame)? == Value::Bool(true) {
                    self.eval(then, frame)
                } else {
                    self.eval(otherwise, frame)
                }
            }
            Expr::For(bindings, body) => {
                let mut out = Vec::new();
                self.for_loop(bindings, body, frame, &mut out)?;
                Ok(Value::List(out))
            }
            Expr::Quantified {
                every,
                bindings,
                condition,
            } => {
                let lists = bindings
                    .iter()
                    .map(|(name, e)| Ok((name.as_str(), self.eval(e, frame)?)))
                    .collect::<Result<Vec<_>, Error>>()?;
                self.quantified(*every, &lists, condition, frame)
            }
        }
    }

    fn path(&mut self, base: &Expr, name: &str, frame: &Frame<'_>) -> Result<Value, Error> {
        // Walk name chains by reference so `order.customer.name` does not copy `order`.
        if let Expr::Name(root) = base {
            if let Some(v) = frame.lookup(root) {
                return Ok(self.member(&v, name));
            }
            self.warn(|| format!("no variable found with name '{root}'"));
            return Ok(Value::Null);
        }
        let base = self.eval(base, frame)?;
        Ok(self.member(&base, name))
    }

    fn member(&mut self, base: &Value, name: &str) -> Value {
        match base {
            Value::Context(map) => match map.get(name) {
                Some(v) => v.clone(),
                None => {
                    self.warn(|| format!("no context entry found with key '{name}'"));
                    Value::Null
                }
            },
            Value::List(items) => {
                Value::List(items.iter().map(|item| self.member(item, name)).collect())
            }
            Value::Null => Value::Null,
            Value::Range(r) => match name {
                "start" => bound_value(&r.start),
                "end" => bound_value(&r.end),
                "start included" => Value::Bool(matches!(r.start, Bound::Closed(_))),
                "end included" => Value::Bool(matches!(r.end, Bound::Closed(_))),
                _ => Value::Null,
            },
            other => temporal::property(other, name).unwrap_or_else(|| {
                self.warn(|| format!("a {} has no property '{name}'", other.type_name()));
                Value::Null
            }),
        }
    }

    fn filter(&mut self, base: &Expr, filter: &Expr, frame: &Frame<'_>) -> Result<Value, Error> {
        let base = self.eval(base, frame)?;
        let items = match base {
            Value::List(items) => items,
            Value::Null => return Ok(Value::Null),
            single => vec![single],
        };
        // A filter that is a number (in the outer scope) picks an item by position.
        let index = match filter {
            Expr::Literal(Value::Number(n)) => Some(*n),
            Expr::Negate(_) | Expr::Name(_) | Expr::Arith(..) | Expr::Path(..) => {
                let mut probe = Evaluator::new(self.now);
                match probe.eval(filter, frame) {
                    Ok(Value::Number(n)) => Some(n),
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(n) = index {
            let Some(i) = n.to_i64().filter(|_| n.fract().is_zero()) else {
                return Ok(Value::Null);
            };
            let len = items.len() as i64;
            let idx = if i > 0 { i - 1 } else { len + i };
            return Ok(if (0..len).contains(&idx) {
                items[idx as usize].clone()
            } else {
                Value::Null
            });
        }
        let mut out = Vec::new();
        for item in &items {
            let keep = {
                let bound = Frame::Bind {
                    name: "item",
                    value: item,
                    parent: frame,
                };
                match item {
                    Value::Context(entries) => {
                        let inner = Frame::Entries {
                            entries,
                            parent: &bound,
                        };
                        self.eval(filter, &inner)?
                    }
                    _ => self.eval(filter, &bound)?,
                }
            };
            if keep == Value::Bool(true) {
                out.push(item.clone());
            }
        }
        Ok(Value::List(out))
    }

    fn call(
        &mut self,
        func: &Builtin,
        args: &Args,
        col: usize,
        frame: &Frame<'_>,
    ) -> Result<Value, Error> {
        let values = match args {
            Args::Positional(exprs) => {
                let mut out = Vec::with_capacity(exprs.len());
                for e in exprs {
                    out.push(self.eval(e, frame)?);
                }
                out
            }
            Args::Named(named) => {
                let mut out = vec![Value::Null; func.params.len()];
                let mut last = 0;
                for (name, e) in named {
                    let pos = func.params.iter().position(|p| p == name).ok_or_else(|| {
                        Error::at(col, format!("{}() has no parameter '{name}'", func.name))
                    })?;
                    out[pos] = self.eval(e, frame)?;
                    last = last.max(pos + 1);
                }
                out.truncate(last.max(func.required));
                out
            }
        };
        (func.call)(&Call {
            args: &values,
            now: self.now,
        })
        .map_err(|msg| Error::at(col, msg))
    }

    fn arith(&mut self, op: ArithOp, a: &Value, b: &Value) -> Value {
        let result = match (op, a, b) {
            (_, Value::Null, _) | (_, _, Value::Null) => return Value::Null,
            (ArithOp::Add, Value::Number(x), Value::Number(y)) => {
                x.checked_add(*y).map(Value::Number)
            }
            (ArithOp::Sub, Value::Number(x), Value::Number(y)) => {
                x.checked_sub(*y).map(Value::Number)
            }
            (ArithOp::Mul, Value::Number(x), Value::Number(y)) => {
                x.checked_mul(*y).map(Value::Number)
            }
            (ArithOp::Div, Value::Number(x), Value::Number(y)) => {
                x.checked_div(*y).map(Value::Number)
            }
            (ArithOp::Pow, Value::Number(x), Value::Number(y)) => pow(*x, *y).map(Value::Number),
            (ArithOp::Add, Value::String(x), Value::String(y)) => {
                Some(Value::String(format!("{x}{y}")))
            }
            (ArithOp::Add, _, _) => temporal::add(a, b),
            (ArithOp::Sub, _, _) => temporal::sub(a, b),
            (ArithOp::Mul, Value::Number(n), d) | (ArithOp::Mul, d, Value::Number(n)) => {
                temporal::scale(d, *n, false)
            }
            (ArithOp::Div, d, Value::Number(n)) if !n.is_zero() => temporal::scale(d, *n, true),
            (ArithOp::Div, _, _) => temporal::ratio(a, b),
            _ => None,
        };
        result.unwrap_or_else(|| {
            self.warn(|| {
                format!(
                    "cannot apply '{}' to a {} and a {}",
                    op_symbol(op),
                    a.type_name(),
                    b.type_name()
                )
            });
            Value::Null
        })
    }

    fn unary_test(
        &mut self,
        v: &Value,
        test: &UnaryTest,
        frame: &Frame<'_>,
    ) -> Result<Option<bool>, Error> {
        Ok(match test {
            UnaryTest::Compare(op, e) => {
                let rhs = self.eval(e, frame)?;
                compare(*op, v, &rhs).as_bool()
            }
            UnaryTest::Value(e) => match self.eval(e, frame)? {
                Value::Range(r) => builtins::in_range(v, &r.start, &r.end),
                Value::List(items) => {
                    let mut saw_null = false;
                    for item in &items {
                        let hit = match item {
                            Value::Range(r) => builtins::in_range(v, &r.start, &r.end),
                            other => v.feel_eq(other),
                        };
                        match hit {
                            Some(true) => return Ok(Some(true)),
                            Some(false) => {}
                            None => saw_null = true,
                        }
                    }
                    if saw_null { None } else { Some(false) }
                }
                other => v.feel_eq(&other),
            },
        })
    }

    fn for_loop(
        &mut self,
        bindings: &[(String, Iteration)],
        body: &Expr,
        frame: &Frame<'_>,
        out: &mut Vec<Value>,
    ) -> Result<(), Error> {
        let Some(((name, iteration), rest)) = bindings.split_first() else {
            if out.len() >= MAX_LIST_LEN {
                return Err(Error::at(
                    1,
                    format!("a for expression built more than {MAX_LIST_LEN} items"),
                ));
            }
            out.push(self.eval(body, frame)?);
            return Ok(());
        };
        let items = match iteration {
            Iteration::List(e) => match self.eval(e, frame)? {
                Value::List(items) => items,
                Value::Null => Vec::new(),
                single => vec![single],
            },
            Iteration::Numbers(from, to) => {
                let from = self.eval(from, frame)?.as_number().and_then(|n| n.to_i64());
                let to = self.eval(to, frame)?.as_number().and_then(|n| n.to_i64());
                let (Some(from), Some(to)) = (from, to) else {
                    return Ok(());
                };
                if from.abs_diff(to) >= MAX_LIST_LEN as u64 {
                    return Err(Error::at(
                        1,
                        format!("the range {from}..{to} has more than {MAX_LIST_LEN} numbers"),
                    ));
                }
                if from <= to {
                    (from..=to).map(Value::from).collect()
                } else {
                    (to..=from).rev().map(Value::from).collect()
                }
            }
        };
        for item in &items {
            let inner = Frame::Bind {
                name,
                value: item,
                parent: frame,
            };
            self.for_loop(rest, body, &inner, out)?;
        }
        Ok(())
    }

    fn quantified(
        &mut self,
        every: bool,
        lists: &[(&str, Value)],
        condition: &Expr,
        frame: &Frame<'_>,
    ) -> Result<Value, Error> {
        let Some(((name, list), rest)) = lists.split_first() else {
            return Ok(match self.eval(condition, frame)? {
                Value::Bool(b) => Value::Bool(b),
                _ => Value::Bool(false),
            });
        };
        let items: Cow<'_, [Value]> = match list {
            Value::List(items) => Cow::Borrowed(items),
            Value::Null => Cow::Owned(Vec::new()),
            single => Cow::Owned(vec![single.clone()]),
        };
        for item in items.iter() {
            let inner = Frame::Bind {
                name,
                value: item,
                parent: frame,
            };
            let r = self.quantified(every, rest, condition, &inner)?;
            if every && r != Value::Bool(true) {
                return Ok(Value::Bool(false));
            }
            if !every && r == Value::Bool(true) {
                return Ok(Value::Bool(true));
            }
        }
        Ok(Value::Bool(every))
    }
}

fn bound_value(b: &Bound) -> Value {
    match b {
        Bound::Unbounded => Value::Null,
        Bound::Open(v) | Bound::Closed(v) => v.clone(),
    }
}

fn compare(op: CmpOp, a: &Value, b: &Value) -> Value {
    match op {
        CmpOp::Eq => a.feel_eq(b).map(Value::Bool).unwrap_or(Value::Null),
        CmpOp::Ne => a.feel_eq(b).map(|e| Value::Bool(!e)).unwrap_or(Value::Null),
        _ => match a.feel_cmp(b) {
            Some(o) => Value::Bool(match op {
                CmpOp::Lt => o == Ordering::Less,
                CmpOp::Le => o != Ordering::Greater,
                CmpOp::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            }),
            None => Value::Null,
        },
    }
}

fn pow(x: Decimal, y: Decimal) -> Option<Decimal> {
    if y.fract().is_zero() {
        x.checked_powi(y.to_i64()?)
    } else {
        x.checked_powd(y)
    }
}

fn op_symbol(op: ArithOp) -> &'static str {
    match op {
        ArithOp::Add => "+",
        ArithOp::Sub => "-",
        ArithOp::Mul => "*",
        ArithOp::Div => "/",
        ArithOp::Pow => "**",
    }
}
