//! FEEL's built-in functions: strings, lists, numbers, contexts, conversions and temporal ones.
//!
//! Each entry names its parameters (for named arguments) and how many are required. A function
//! given values of the wrong type returns null, as FEEL specifies; only misuse that the author can
//! fix in the expression (an invalid regular expression, a wrong argument count) is an error.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use rust_decimal::prelude::{MathematicalOps, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};

use super::temporal;
use super::value::{Bound, DateTimeValue, LocalTime, Value};

/// What a built-in is called with: its arguments, in parameter order, and the engine's clock.
pub(crate) struct Call<'a> {
    pub(crate) args: &'a [Value],
    pub(crate) now: Timestamp,
}

impl Call<'_> {
    fn arg(&self, i: usize) -> &Value {
        self.args.get(i).unwrap_or(&Value::Null)
    }

    fn str(&self, i: usize) -> Option<&str> {
        self.arg(i).as_str()
    }

    fn num(&self, i: usize) -> Option<Decimal> {
        self.arg(i).as_number()
    }

    /// A list argument, or the arguments themselves for `min(1, 2, 3)`-style calls.
    fn list_or_varargs(&self) -> Option<Vec<Value>> {
        match self.args {
            [Value::List(items)] => Some(items.clone()),
            [Value::Null] | [] => None,
            many => Some(many.to_vec()),
        }
    }
}

type Impl = fn(&Call<'_>) -> Result<Value, String>;

pub(crate) struct Builtin {
    pub(crate) name: &'static str,
    pub(crate) params: &'static [&'static str],
    pub(crate) required: usize,
    /// Takes any number of arguments after the named ones.
    pub(crate) variadic: bool,
    pub(crate) call: Impl,
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}()", self.name)
    }
}

/// The most words in a built-in's name (`years and months duration`).
pub(crate) const MAX_NAME_WORDS: usize = 4;

pub(crate) fn lookup(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// The names of every built-in, for documentation and tests.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|b| b.name)
}

macro_rules! builtin {
    ($name:literal, [$($param:literal),*], $required:literal, $f:expr) => {
        Builtin { name: $name, params: &[$($param),*], required: $required, variadic: false, call: $f }
    };
    ($name:literal, [$($param:literal),*], $required:literal, variadic, $f:expr) => {
        Builtin { name: $name, params: &[$($param),*], required: $required, variadic: true, call: $f }
    };
}

static BUILTINS: &[Builtin] = &[
    // Boolean and null handling.
    builtin!("not", ["negand"], 1, |c| Ok(match c.arg(0) {
        Value::Bool(b) => Value::Bool(!b),
        _ => Value::Null,
    })),
    builtin!("is defined", ["value"], 1, |c| Ok(Value::Bool(
        !c.arg(0).is_null()
    ))),
    builtin!("get or else", ["value", "default"], 2, |c| Ok(
        if c.arg(0).is_null() {
            c.arg(1).clone()
        } else {
            c.arg(0).clone()
        }
    )),
    // Conversion.
    builtin!("string", ["from"], 1, |c| Ok(match c.arg(0) {
        Value::Null => Value::Null,
        v => Value::String(v.to_string()),
    })),
    builtin!(
        "number",
        ["from", "grouping separator", "decimal separator"],
        1,
        number
    ),
    builtin!("decimal", ["n", "scale"], 2, |c| Ok(round(
        c,
        RoundingStrategy::MidpointNearestEven
    ))),
    builtin!("date", ["from", "month", "day"], 1, date),
    builtin!("time", ["from", "minute", "second", "offset"], 1, time),
    builtin!("date and time", ["from", "time"], 1, date_and_time),
    builtin!("duration", ["from"], 1, |c| Ok(c
        .str(0)
        .and_then(temporal::duration_value)
        .unwrap_or(Value::Null))),
    builtin!(
        "years and months duration",
        ["from", "to"],
        2,
        years_and_months
    ),
    builtin!("now", [], 0, |c| Ok(temporal::now_value(c.now))),
    builtin!("today", [], 0, |c| Ok(temporal::today_value(c.now))),
    builtin!("day of week", ["date"], 1, |c| Ok(date_of(c.arg(0))
        .map(|d| Value::from(
            WEEKDAYS[usize::from(d.weekday().to_monday_zero_offset().unsigned_abs())]
        ))
        .unwrap_or(Value::Null))),
    builtin!("day of year", ["date"], 1, |c| Ok(date_of(c.arg(0))
        .map(|d| Value::from(i64::from(d.day_of_year())))
        .unwrap_or(Value::Null))),
    builtin!("week of year", ["date"], 1, |c| Ok(date_of(c.arg(0))
        .map(|d| Value::from(i64::from(d.iso_week_date().week())))
        .unwrap_or(Value::Null))),
    builtin!("month of year", ["date"], 1, |c| Ok(date_of(c.arg(0))
        .map(|d| Value::from(MONTHS[usize::from(d.month().unsigned_abs()) - 1]))
        .unwrap_or(Value::Null))),
    builtin!("last day of month", ["date"], 1, |c| Ok(date_of(c.arg(0))
        .map(|d| Value::from(i64::from(d.days_in_month())))
        .unwrap_or(Value::Null))),
    // Strings.
    builtin!("string length", ["string"], 1, |c| Ok(c
        .str(0)
        .map(|s| Value::from(s.chars().count() as i64))
        .unwrap_or(Value::Null))),
    builtin!(
        "substring",
        ["string", "start position", "length"],
        2,
        substring
    ),
    builtin!("upper case", ["string"], 1, |c| Ok(c
        .str(0)
        .map(|s| Value::from(s.to_uppercase()))
        .unwrap_or(Value::Null))),
    builtin!("lower case", ["string"], 1, |c| Ok(c
        .str(0)
        .map(|s| Value::from(s.to_lowercase()))
        .unwrap_or(Value::Null))),
    builtin!("substring before", ["string", "match"], 2, |c| Ok(
        match (c.str(0), c.str(1)) {
            (Some(s), Some(m)) => Value::from(s.find(m).map_or("", |i| &s[..i])),
            _ => Value::Null,
        }
    )),
    builtin!("substring after", ["string", "match"], 2, |c| Ok(
        match (c.str(0), c.str(1)) {
            (Some(s), Some(m)) => Value::from(s.find(m).map_or("", |i| &s[i + m.len()..])),
            _ => Value::Null,
        }
    )),
    builtin!("contains", ["string", "match"], 2, |c| Ok(
        match (c.str(0), c.str(1)) {
            (Some(s), Some(m)) => Value::Bool(s.contains(m)),
            _ => Value::Null,
        }
    )),
    builtin!("starts with", ["string", "match"], 2, |c| Ok(
        match (c.str(0), c.str(1)) {
            (Some(s), Some(m)) => Value::Bool(s.starts_with(m)),
            _ => Value::Null,
        }
    )),
    builtin!("ends with", ["string", "match"], 2, |c| Ok(
        match (c.str(0), c.str(1)) {
            (Some(s), Some(m)) => Value::Bool(s.ends_with(m)),
            _ => Value::Null,
        }
    )),
    builtin!(
        "matches",
        ["input", "pattern", "flags"],
        2,
        |c| match (c.str(0), c.str(1)) {
            (Some(s), Some(p)) => Ok(Value::Bool(regex(p, c.str(2))?.is_match(s))),
            _ => Ok(Value::Null),
        }
    ),
    builtin!(
        "replace",
        ["input", "pattern", "replacement", "flags"],
        3,
        |c| match (c.str(0), c.str(1), c.str(2)) {
            (Some(s), Some(p), Some(r)) => {
                // XPath writes group references as $1, as the regex crate does; `${1}` is not XPath.
                Ok(Value::from(
                    regex(p, c.str(3))?.replace_all(s, r).into_owned(),
                ))
            }
            _ => Ok(Value::Null),
        }
    ),
    builtin!(
        "split",
        ["string", "delimiter"],
        2,
        |c| match (c.str(0), c.str(1)) {
            (Some(s), Some(d)) => Ok(Value::List(
                regex(d, None)?.split(s).map(Value::from).collect()
            )),
            _ => Ok(Value::Null),
        }
    ),
    builtin!(
        "extract",
        ["string", "pattern"],
        2,
        |c| match (c.str(0), c.str(1)) {
            (Some(s), Some(p)) => Ok(Value::List(
                regex(p, None)?
                    .find_iter(s)
                    .map(|m| Value::from(m.as_str()))
                    .collect()
            )),
            _ => Ok(Value::Null),
        }
    ),
    builtin!("trim", ["string"], 1, |c| Ok(c
        .str(0)
        .map(|s| Value::from(s.trim()))
        .unwrap_or(Value::Null))),
    builtin!(
        "string join",
        ["list", "delimiter", "prefix", "suffix"],
        1,
        string_join
    ),
    // Lists.
    builtin!("list contains", ["list", "element"], 2, |c| Ok(
        match c.arg(0) {
            Value::List(items) =>
                Value::Bool(items.iter().any(|v| v.feel_eq(c.arg(1)) == Some(true))),
            _ => Value::Null,
        }
    )),
    builtin!("count", ["list"], 1, |c| Ok(match c.arg(0) {
        Value::List(items) => Value::from(items.len() as i64),
        _ => Value::Null,
    })),
    builtin!("min", ["list"], 1, variadic, |c| Ok(extreme(
        c,
        std::cmp::Ordering::Less
    ))),
    builtin!("max", ["list"], 1, variadic, |c| Ok(extreme(
        c,
        std::cmp::Ordering::Greater
    ))),
    builtin!("sum", ["list"], 1, variadic, |c| Ok(numbers(c)
        .and_then(|ns| ns
            .into_iter()
            .try_fold(Decimal::ZERO, |a, n| a.checked_add(n)))
        .map(Value::Number)
        .unwrap_or(Value::Null))),
    builtin!("product", ["list"], 1, variadic, |c| Ok(numbers(c)
        .filter(|ns| !ns.is_empty())
        .and_then(|ns| ns
            .into_iter()
            .try_fold(Decimal::ONE, |a, n| a.checked_mul(n)))
        .map(Value::Number)
        .unwrap_or(Value::Null))),
    builtin!("mean", ["list"], 1, variadic, |c| Ok(numbers(c)
        .filter(|ns| !ns.is_empty())
        .and_then(|ns| {
            let len = Decimal::from(ns.len() as u64);
            ns.into_iter()
                .try_fold(Decimal::ZERO, |a, n| a.checked_add(n))?
                .checked_div(len)
        })
        .map(Value::Number)
        .unwrap_or(Value::Null))),
    builtin!("median", ["list"], 1, variadic, |c| Ok(numbers(c)
        .filter(|ns| !ns.is_empty())
        .and_then(|mut ns| {
            ns.sort();
            let mid = ns.len() / 2;
            if ns.len() % 2 == 1 {
                Some(ns[mid])
            } else {
                ns[mid - 1].checked_add(ns[mid])?.checked_div(Decimal::TWO)
            }
        })
        .map(Value::Number)
        .unwrap_or(Value::Null))),
    builtin!("all", ["list"], 1, variadic, |c| Ok(all_any(c, true))),
    builtin!("any", ["list"], 1, variadic, |c| Ok(all_any(c, false))),
    builtin!("sublist", ["list", "start position", "length"], 2, sublist),
    builtin!("append", ["list"], 1, variadic, |c| Ok(match c.arg(0) {
        Value::List(items) => {
            let mut out = items.clone();
            out.extend(c.args.iter().skip(1).cloned());
            Value::List(out)
        }
        _ => Value::Null,
    })),
    builtin!("concatenate", ["list"], 0, variadic, |c| {
        let mut out = Vec::new();
        for arg in c.args {
            match arg {
                Value::List(items) => out.extend(items.iter().cloned()),
                _ => return Ok(Value::Null),
            }
        }
        Ok(Value::List(out))
    }),
    builtin!("insert before", ["list", "position", "newItem"], 3, |c| Ok(
        match (c.arg(0), position(c.num(1))) {
            (Value::List(items), Some(p)) => match index(items.len(), p) {
                Some(i) => {
                    let mut out = items.clone();
                    out.insert(i, c.arg(2).clone());
                    Value::List(out)
                }
                None => Value::Null,
            },
            _ => Value::Null,
        }
    )),
    builtin!("remove", ["list", "position"], 2, |c| Ok(
        match (c.arg(0), position(c.num(1))) {
            (Value::List(items), Some(p)) => match index(items.len(), p) {
                Some(i) if i < items.len() => {
                    let mut out = items.clone();
                    out.remove(i);
                    Value::List(out)
                }
                _ => Value::Null,
            },
            _ => Value::Null,
        }
    )),
    builtin!("reverse", ["list"], 1, |c| Ok(match c.arg(0) {
        Value::List(items) => Value::List(items.iter().rev().cloned().collect()),
        _ => Value::Null,
    })),
    builtin!("index of", ["list", "match"], 2, |c| Ok(match c.arg(0) {
        Value::List(items) => Value::List(
            items
                .iter()
                .enumerate()
                .filter(|(_, v)| v.feel_eq(c.arg(1)) == Some(true))
                .map(|(i, _)| Value::from(i as i64 + 1))
                .collect(),
        ),
        _ => Value::Null,
    })),
    builtin!("union", ["list"], 0, variadic, |c| {
        let mut out: Vec<Value> = Vec::new();
        for arg in c.args {
            let Value::List(items) = arg else {
                return Ok(Value::Null);
            };
            for v in items {
                if !out.iter().any(|o| o.feel_eq(v) == Some(true)) {
                    out.push(v.clone());
                }
            }
        }
        Ok(Value::List(out))
    }),
    builtin!("distinct values", ["list"], 1, |c| Ok(match c.arg(0) {
        Value::List(items) => {
            let mut out: Vec<Value> = Vec::new();
            for v in items {
                if !out.iter().any(|o| o.feel_eq(v) == Some(true)) {
                    out.push(v.clone());
                }
            }
            Value::List(out)
        }
        _ => Value::Null,
    })),
    builtin!("duplicate values", ["list"], 1, |c| Ok(match c.arg(0) {
        Value::List(items) => {
            let mut out: Vec<Value> = Vec::new();
            for (i, v) in items.iter().enumerate() {
                let repeated = items[..i].iter().any(|o| o.feel_eq(v) == Some(true));
                if repeated && !out.iter().any(|o| o.feel_eq(v) == Some(true)) {
                    out.push(v.clone());
                }
            }
            Value::List(out)
        }
        _ => Value::Null,
    })),
    builtin!("flatten", ["list"], 1, |c| Ok(match c.arg(0) {
        Value::List(items) => {
            let mut out = Vec::new();
            flatten_into(items, &mut out, 0);
            Value::List(out)
        }
        _ => Value::Null,
    })),
    builtin!("is empty", ["list"], 1, |c| Ok(match c.arg(0) {
        Value::List(items) => Value::Bool(items.is_empty()),
        _ => Value::Null,
    })),
    builtin!("partition", ["list", "size"], 2, |c| Ok(
        match (c.arg(0), c.num(1).and_then(|n| n.to_usize())) {
            (Value::List(items), Some(size)) if size > 0 => {
                Value::List(
                    items
                        .chunks(size)
                        .map(|ch| Value::List(ch.to_vec()))
                        .collect(),
                )
            }
            _ => Value::Null,
        }
    )),
    // Numbers.
    builtin!("floor", ["n", "scale"], 1, |c| Ok(round(
        c,
        RoundingStrategy::ToNegativeInfinity
    ))),
    builtin!("ceiling", ["n", "scale"], 1, |c| Ok(round(
        c,
        RoundingStrategy::ToPositiveInfinity
    ))),
    builtin!("round up", ["n", "scale"], 2, |c| Ok(round(
        c,
        RoundingStrategy::AwayFromZero
    ))),
    builtin!("round down", ["n", "scale"], 2, |c| Ok(round(
        c,
        RoundingStrategy::ToZero
    ))),
    builtin!("round half up", ["n", "scale"], 2, |c| Ok(round(
        c,
        RoundingStrategy::MidpointAwayFromZero
    ))),
    builtin!("round half down", ["n", "scale"], 2, |c| Ok(round(
        c,
        RoundingStrategy::MidpointTowardZero
    ))),
    builtin!("abs", ["n"], 1, |c| Ok(match c.arg(0) {
        Value::Number(n) => Value::Number(n.abs()),
        Value::Duration(d) => Value::Duration(d.abs()),
        Value::YearsMonths(m) => Value::YearsMonths(m.abs()),
        _ => Value::Null,
    })),
    builtin!("modulo", ["dividend", "divisor"], 2, |c| Ok(
        match (c.num(0), c.num(1)) {
            (Some(a), Some(b)) if !b.is_zero() => {
                // FEEL: the result has the sign of the divisor.
                a.checked_div(b)
                    .map(|q| q.floor())
                    .and_then(|q| q.checked_mul(b))
                    .and_then(|p| a.checked_sub(p))
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
            _ => Value::Null,
        }
    )),
    builtin!("sqrt", ["number"], 1, |c| Ok(c
        .num(0)
        .and_then(|n| n.sqrt())
        .map(Value::Number)
        .unwrap_or(Value::Null))),
    builtin!("log", ["number"], 1, |c| Ok(c
        .num(0)
        .filter(|n| n.is_sign_positive() && !n.is_zero())
        .and_then(|n| n.checked_ln())
        .map(Value::Number)
        .unwrap_or(Value::Null))),
    builtin!("exp", ["number"], 1, |c| Ok(c
        .num(0)
        .and_then(|n| n.checked_exp())
        .map(Value::Number)
        .unwrap_or(Value::Null))),
    builtin!("odd", ["number"], 1, |c| Ok(c
        .num(0)
        .filter(|n| n.fract().is_zero())
        .map(|n| Value::Bool(n % Decimal::TWO != Decimal::ZERO))
        .unwrap_or(Value::Null))),
    builtin!("even", ["number"], 1, |c| Ok(c
        .num(0)
        .filter(|n| n.fract().is_zero())
        .map(|n| Value::Bool(n % Decimal::TWO == Decimal::ZERO))
        .unwrap_or(Value::Null))),
    // Contexts.
    builtin!("get value", ["context", "key"], 2, |c| Ok(
        match (c.arg(0), c.str(1)) {
            (Value::Context(m), Some(k)) => m.get(k).cloned().unwrap_or(Value::Null),
            _ => Value::Null,
        }
    )),
    builtin!("get entries", ["context"], 1, |c| Ok(match c.arg(0) {
        Value::Context(m) => Value::List(
            m.iter()
                .map(|(k, v)| {
                    let mut e = BTreeMap::new();
                    e.insert("key".to_owned(), Value::from(k.as_str()));
                    e.insert("value".to_owned(), v.clone());
                    Value::Context(e)
                })
                .collect(),
        ),
        _ => Value::Null,
    })),
    builtin!("context put", ["context", "key", "value"], 3, |c| Ok(
        match (c.arg(0), c.str(1)) {
            (Value::Context(m), Some(k)) => {
                let mut out = m.clone();
                out.insert(k.to_owned(), c.arg(2).clone());
                Value::Context(out)
            }
            _ => Value::Null,
        }
    )),
    builtin!("context merge", ["contexts"], 1, variadic, |c| {
        let Some(list) = c.list_or_varargs() else {
            return Ok(Value::Null);
        };
        let mut out = BTreeMap::new();
        for v in list {
            let Value::Context(m) = v else {
                return Ok(Value::Null);
            };
            out.extend(m);
        }
        Ok(Value::Context(out))
    }),
    builtin!("context", ["entries"], 1, |c| Ok(match c.arg(0) {
        Value::List(entries) => {
            let mut out = BTreeMap::new();
            for e in entries {
                let Some(m) = e.as_context() else {
                    return Ok(Value::Null);
                };
                let Some(Value::String(k)) = m.get("key") else {
                    return Ok(Value::Null);
                };
                out.insert(k.clone(), m.get("value").cloned().unwrap_or(Value::Null));
            }
            Value::Context(out)
        }
        _ => Value::Null,
    })),
];

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Upper bound on a compiled pattern, so a hostile pattern cannot take unbounded memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

fn regex(pattern: &str, flags: Option<&str>) -> Result<regex::Regex, String> {
    let mut b = regex::RegexBuilder::new(pattern);
    b.size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT);
    for f in flags.unwrap_or("").chars() {
        match f {
            'i' => b.case_insensitive(true),
            's' => b.dot_matches_new_line(true),
            'm' => b.multi_line(true),
            'x' => b.ignore_whitespace(true),
            other => return Err(format!("unknown regular expression flag '{other}'")),
        };
    }
    b.build()
        .map_err(|e| format!("invalid regular expression {pattern:?}: {e}"))
}

fn date_of(v: &Value) -> Option<Date> {
    match v {
        Value::Date(d) => Some(*d),
        Value::DateTime(DateTimeValue::Local(dt)) => Some(dt.date()),
        Value::DateTime(DateTimeValue::Zoned(z)) => Some(z.date()),
        _ => None,
    }
}

fn number(c: &Call<'_>) -> Result<Value, String> {
    Ok(match c.arg(0) {
        Value::Number(n) => Value::Number(*n),
        Value::String(s) => {
            let mut text = s.trim().to_owned();
            if let Some(g) = c.str(1) {
                text = text.replace(g, "");
            }
            if let Some(d) = c.str(2) {
                text = text.replace(d, ".");
            }
            text.parse::<Decimal>()
                .or_else(|_| Decimal::from_scientific(&text))
                .map(Value::Number)
                .unwrap_or(Value::Null)
        }
        _ => Value::Null,
    })
}

fn round(c: &Call<'_>, strategy: RoundingStrategy) -> Value {
    let Some(n) = c.num(0) else {
        return Value::Null;
    };
    let scale = match c.args.get(1) {
        None | Some(Value::Null) => 0,
        Some(Value::Number(s)) => match s.to_i32() {
            Some(s) if (-28..=28).contains(&s) => s,
            _ => return Value::Null,
        },
        Some(_) => return Value::Null,
    };
    if scale >= 0 {
        Value::Number(n.round_dp_with_strategy(scale.unsigned_abs(), strategy))
    } else {
        // Negative scale rounds to tens, hundreds, ...
        let factor = Decimal::from(10_i64.pow(scale.unsigned_abs()));
        match n.checked_div(factor) {
            Some(q) => Value::Number(q.round_dp_with_strategy(0, strategy) * factor),
            None => Value::Null,
        }
    }
}

fn date(c: &Call<'_>) -> Result<Value, String> {
    if c.args.len() >= 3 {
        let parts: Option<Vec<i64>> = (0..3).map(|i| c.num(i).and_then(|n| n.to_i64())).collect();
        return Ok(parts
            .and_then(|p| {
                Date::new(
                    p[0].try_into().ok()?,
                    p[1].try_into().ok()?,
                    p[2].try_into().ok()?,
                )
                .ok()
            })
            .map(Value::Date)
            .unwrap_or(Value::Null));
    }
    Ok(match c.arg(0) {
        Value::String(s) => temporal::parse_date(s)
            .map(Value::Date)
            .or_else(|| {
                temporal::parse_date_time(s)
                    .and_then(|dt| date_of(&Value::DateTime(dt)))
                    .map(Value::Date)
            })
            .unwrap_or(Value::Null),
        other => date_of(other).map(Value::Date).unwrap_or(Value::Null),
    })
}

fn time(c: &Call<'_>) -> Result<Value, String> {
    if c.args.len() >= 3 {
        let h = c.num(0).and_then(|n| n.to_i8());
        let m = c.num(1).and_then(|n| n.to_i8());
        let s = c.num(2);
        let offset = match c.arg(3) {
            Value::Duration(d) => {
                Some(i32::try_from(d.as_secs()).map_err(|_| "offset out of range")?)
            }
            _ => None,
        };
        return Ok(match (h, m, s) {
            (Some(h), Some(m), Some(s)) => {
                let whole = s.trunc().to_i8();
                let nanos = ((s - s.trunc()) * Decimal::from(1_000_000_000)).to_i32();
                match (whole, nanos) {
                    (Some(w), Some(n)) => Time::new(h, m, w, n)
                        .ok()
                        .map(|time| {
                            Value::Time(LocalTime {
                                time,
                                offset_seconds: offset,
                            })
                        })
                        .unwrap_or(Value::Null),
                    _ => Value::Null,
                }
            }
            _ => Value::Null,
        });
    }
    Ok(match c.arg(0) {
        Value::String(s) => temporal::parse_time(s)
            .map(Value::Time)
            .or_else(|| match temporal::parse_date_time(s) {
                Some(dt) => time_of(&dt).map(Value::Time),
                None => None,
            })
            .unwrap_or(Value::Null),
        Value::Time(t) => Value::Time(*t),
        Value::DateTime(dt) => time_of(dt).map(Value::Time).unwrap_or(Value::Null),
        Value::Date(_) => Value::Time(LocalTime {
            time: Time::midnight(),
            offset_seconds: Some(0),
        }),
        _ => Value::Null,
    })
}

fn time_of(dt: &DateTimeValue) -> Option<LocalTime> {
    Some(match dt {
        DateTimeValue::Local(dt) => LocalTime {
            time: dt.time(),
            offset_seconds: None,
        },
        DateTimeValue::Zoned(z) => LocalTime {
            time: z.time(),
            offset_seconds: Some(z.offset().seconds()),
        },
    })
}

fn date_and_time(c: &Call<'_>) -> Result<Value, String> {
    if c.args.len() >= 2 && !c.arg(1).is_null() {
        let date = date_of(c.arg(0));
        let time = match c.arg(1) {
            Value::Time(t) => Some(*t),
            _ => None,
        };
        return Ok(match (date, time) {
            (Some(d), Some(t)) => temporal::combine(d, t)
                .map(Value::DateTime)
                .unwrap_or(Value::Null),
            _ => Value::Null,
        });
    }
    Ok(match c.arg(0) {
        Value::String(s) => temporal::parse_date_time(s)
            .map(Value::DateTime)
            .or_else(|| {
                temporal::parse_date(s)
                    .map(|d| Value::DateTime(DateTimeValue::Local(d.to_datetime(Time::midnight()))))
            })
            .unwrap_or(Value::Null),
        Value::DateTime(dt) => Value::DateTime(dt.clone()),
        Value::Date(d) => Value::DateTime(DateTimeValue::Local(d.to_datetime(Time::midnight()))),
        _ => Value::Null,
    })
}

fn years_and_months(c: &Call<'_>) -> Result<Value, String> {
    let (Some(from), Some(to)) = (date_of(c.arg(0)), date_of(c.arg(1))) else {
        return Ok(Value::Null);
    };
    let mut months = (i64::from(to.year()) - i64::from(from.year())) * 12
        + (i64::from(to.month()) - i64::from(from.month()));
    // Count whole months only.
    if months > 0 && to.day() < from.day() {
        months -= 1;
    } else if months < 0 && to.day() > from.day() {
        months += 1;
    }
    Ok(Value::YearsMonths(months))
}

fn substring(c: &Call<'_>) -> Result<Value, String> {
    let (Some(s), Some(start)) = (c.str(0), position(c.num(1))) else {
        return Ok(Value::Null);
    };
    let chars: Vec<char> = s.chars().collect();
    let len = chars.len() as i64;
    // FEEL positions are 1-based; negative ones count from the end.
    let begin = if start > 0 { start - 1 } else { len + start };
    if begin < 0 || begin > len {
        return Ok(Value::from(""));
    }
    let end = match c.args.get(2) {
        None | Some(Value::Null) => len,
        Some(Value::Number(n)) => match n.to_i64() {
            Some(l) if l >= 0 => (begin + l).min(len),
            _ => return Ok(Value::Null),
        },
        Some(_) => return Ok(Value::Null),
    };
    Ok(Value::from(
        chars[begin as usize..end.max(begin) as usize]
            .iter()
            .collect::<String>(),
    ))
}

fn position(n: Option<Decimal>) -> Option<i64> {
    n.filter(|n| n.fract().is_zero()).and_then(|n| n.to_i64())
}

/// 0-based index for a 1-based (or negative, from the end) FEEL position.
fn index(len: usize, position: i64) -> Option<usize> {
    let len = len as i64;
    let i = if position > 0 {
        position - 1
    } else {
        len + position
    };
    (0..=len).contains(&i).then_some(i as usize)
}

fn string_join(c: &Call<'_>) -> Result<Value, String> {
    let Value::List(items) = c.arg(0) else {
        return Ok(Value::Null);
    };
    let mut parts = Vec::with_capacity(items.len());
    for v in items {
        match v {
            Value::String(s) => parts.push(s.as_str()),
            Value::Null => {}
            _ => return Ok(Value::Null),
        }
    }
    let delimiter = c.str(1).unwrap_or("");
    let joined = parts.join(delimiter);
    Ok(Value::from(format!(
        "{}{joined}{}",
        c.str(2).unwrap_or(""),
        c.str(3).unwrap_or("")
    )))
}

fn numbers(c: &Call<'_>) -> Option<Vec<Decimal>> {
    c.list_or_varargs()?.iter().map(Value::as_number).collect()
}

fn extreme(c: &Call<'_>, want: std::cmp::Ordering) -> Value {
    let Some(list) = c.list_or_varargs() else {
        return Value::Null;
    };
    let mut best: Option<Value> = None;
    for v in list {
        best = match best {
            None => Some(v),
            Some(b) => match v.feel_cmp(&b) {
                Some(o) if o == want => Some(v),
                Some(_) => Some(b),
                None => return Value::Null,
            },
        };
    }
    best.unwrap_or(Value::Null)
}

fn all_any(c: &Call<'_>, all: bool) -> Value {
    let Some(list) = c.list_or_varargs() else {
        return Value::Null;
    };
    let mut saw_null = false;
    for v in list {
        match v {
            Value::Bool(b) if b != all => return Value::Bool(b),
            Value::Bool(_) => {}
            _ => saw_null = true,
        }
    }
    if saw_null {
        Value::Null
    } else {
        Value::Bool(all)
    }
}

fn sublist(c: &Call<'_>) -> Result<Value, String> {
    let (Value::List(items), Some(start)) = (c.arg(0), position(c.num(1))) else {
        return Ok(Value::Null);
    };
    let len = items.len() as i64;
    let begin = if start > 0 { start - 1 } else { len + start };
    if begin < 0 || begin > len {
        return Ok(Value::Null);
    }
    let end = match c.args.get(2) {
        None | Some(Value::Null) => len,
        Some(Value::Number(n)) => match n.to_i64() {
            Some(l) if l >= 0 => (begin + l).min(len),
            _ => return Ok(Value::Null),
        },
        Some(_) => return Ok(Value::Null),
    };
    Ok(Value::List(items[begin as usize..end as usize].to_vec()))
}

fn flatten_into(items: &[Value], out: &mut Vec<Value>, depth: usize) {
    for v in items {
        match v {
            // Values come from JSON or expressions, both depth-limited; the bound is a backstop.
            Value::List(inner) if depth < 64 => flatten_into(inner, out, depth + 1),
            other => out.push(other.clone()),
        }
    }
}

/// Range bounds for `in` tests: used by the evaluator.
pub(crate) fn in_range(v: &Value, start: &Bound, end: &Bound) -> Option<bool> {
    let lower = match start {
        Bound::Unbounded => true,
        Bound::Open(s) => v.feel_cmp(s)? == std::cmp::Ordering::Greater,
        Bound::Closed(s) => v.feel_cmp(s)? != std::cmp::Ordering::Less,
    };
    let upper = match end {
        Bound::Unbounded => true,
        Bound::Open(e) => v.feel_cmp(e)? == std::cmp::Ordering::Less,
        Bound::Closed(e) => v.feel_cmp(e)? != std::cmp::Ordering::Greater,
    };
    Some(lower && upper)
}
