//! FEEL values: what expressions compute and what process variables hold.
//!
//! Numbers are decimals (so `0.1 + 0.2 = 0.3`, as money needs); temporal values follow the FEEL
//! types. Variables hold only the JSON-compatible part: temporal results are stored as their
//! ISO 8601 text, as Zeebe does.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::Offset;
use jiff::{SignedDuration, ZonedDateTime};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

/// A FEEL context: string keys, kept sorted so that evaluation and storage are deterministic.
pub type Context = BTreeMap<String, Value>;

/// A FEEL value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(Decimal),
    String(String),
    List(Vec<Value>),
    Context(Context),
    Date(Date),
    Time(LocalTime),
    DateTime(DateTimeValue),
    /// A days-and-time duration (`P1DT2H`).
    Duration(SignedDuration),
    /// A years-and-months duration (`P1Y2M`), in months.
    YearsMonths(i64),
    Range(Box<Range>),
}

/// A time of day, with or without a UTC offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalTime {
    pub time: Time,
    /// Offset in seconds east of UTC, when the time has one.
    pub offset_seconds: Option<i32>,
}

/// A date and time: local (no zone) or anchored to a zone or offset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DateTimeValue {
    Local(DateTime),
    Zoned(ZonedDateTime),
}

/// A range `[a..b]`, `(a..b)`, `]a..b[`; a bound may be missing (`> 5` is `(5..`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub start: Bound,
    pub end: Bound,
}

/// One end of a [`Range`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Bound {
    Unbounded,
    Open(Value),
    Closed(Value),
}

impl Value {
    pub fn number(n: impl Into<Decimal>) -> Value {
        Value::Number(n.into())
    }

    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// The FEEL type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Context(_) => "context",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
            Value::DateTime(_) => "date and time",
            Value::Duration(_) => "days and time duration",
            Value::YearsMonths(_) => "years and months duration",
            Value::Range(_) => "range",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<Decimal> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_context(&self) -> Option<&Context> {
        match self {
            Value::Context(c) => Some(c),
            _ => None,
        }
    }

    /// Reads a JSON value. Integers are exact; other numbers go through their shortest decimal
    /// text, so `0.1` in JSON is exactly `0.1` here.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => number_from_json(n),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => {
                Value::List(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(map) => Value::Context(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Writes the value as JSON. Temporal values become their ISO 8601 text, ranges become null.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null | Value::Range(_) => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => number_to_json(*n),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Context(map) => serde_json::Value::Object(
                map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
            ),
            other => serde_json::Value::String(other.to_string()),
        }
    }

    /// The value as a process variable may hold it: JSON-compatible, temporal values as text.
    pub fn into_variable(self) -> Value {
        match self {
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => self,
            Value::Range(_) => Value::Null,
            Value::List(items) => {
                Value::List(items.into_iter().map(Value::into_variable).collect())
            }
            Value::Context(map) => Value::Context(
                map.into_iter()
                    .map(|(k, v)| (k, v.into_variable()))
                    .collect(),
            ),
            other => Value::String(other.to_string()),
        }
    }

    /// FEEL equality: `null = null` is true, values of different types are not equal, numbers
    /// compare by value (`1 = 1.0`). Returns `None` where FEEL says the result is null
    /// (comparing incomparable temporal values).
    pub fn feel_eq(&self, other: &Value) -> Option<bool> {
        match (self, other) {
            (Value::Null, Value::Null) => Some(true),
            (Value::Null, _) | (_, Value::Null) => Some(false),
            (Value::List(a), Value::List(b)) => {
                if a.len() != b.len() {
                    return Some(false);
                }
                for (x, y) in a.iter().zip(b) {
                    if !x.feel_eq(y)? {
                        return Some(false);
                    }
                }
                Some(true)
            }
            (Value::Context(a), Value::Context(b)) => {
                if a.len() != b.len() {
                    return Some(false);
                }
                for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                    if ka != kb || !va.feel_eq(vb)? {
                        return Some(false);
                    }
                }
                Some(true)
            }
            (Value::Range(a), Value::Range(b)) => Some(a == b),
            _ => match self.feel_cmp(other) {
                Some(ord) => Some(ord == Ordering::Equal),
                None if std::mem::discriminant(self) == std::mem::discriminant(other) => {
                    Some(self == other)
                }
                None => Some(false),
            },
        }
    }

    /// FEEL ordering of two values of the same comparable type; `None` when they cannot be
    /// compared (FEEL then yields null).
    pub fn feel_cmp(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Number(a), Value::Number(b)) => Some(a.cmp(b)),
            (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::Date(a), Value::Date(b)) => Some(a.cmp(b)),
            (Value::Time(a), Value::Time(b)) => match (a.offset_seconds, b.offset_seconds) {
                (None, None) => Some(a.time.cmp(&b.time)),
                (Some(oa), Some(ob)) => {
                    Some(time_utc_seconds(a.time, oa).cmp(&time_utc_seconds(b.time, ob)))
                }
                _ => None,
            },
            (Value::DateTime(a), Value::DateTime(b)) => match (a, b) {
                (DateTimeValue::Local(a), DateTimeValue::Local(b)) => Some(a.cmp(b)),
                (DateTimeValue::Zoned(a), DateTimeValue::Zoned(b)) => {
                    Some(a.timestamp().cmp(&b.timestamp()))
                }
                _ => None,
            },
            (Value::Duration(a), Value::Duration(b)) => Some(a.cmp(b)),
            (Value::YearsMonths(a), Value::YearsMonths(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

/// Nanoseconds since midnight UTC of a time with an offset (may leave 0..24h; only compared).
fn time_utc_seconds(time: Time, offset_seconds: i32) -> i64 {
    let secs =
        i64::from(time.hour()) * 3600 + i64::from(time.minute()) * 60 + i64::from(time.second())
            - i64::from(offset_seconds);
    secs * 1_000_000_000 + i64::from(time.subsec_nanosecond())
}

fn number_from_json(n: &serde_json::Number) -> Value {
    if let Some(i) = n.as_i64() {
        return Value::Number(Decimal::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Value::Number(Decimal::from(u));
    }
    // `Display` of an f64 is its shortest round-trip text, which is exactly what the JSON held
    // for every number with at most 15 significant digits.
    let text = n.to_string();
    text.parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(&text))
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn number_to_json(n: Decimal) -> serde_json::Value {
    let n = n.normalize();
    if n.scale() == 0
        && let Some(i) = n.to_i64()
    {
        return serde_json::Value::Number(i.into());
    }
    n.to_f64()
        .and_then(serde_json::Number::from_f64)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Number(Decimal::from(n))
    }
}

impl From<Decimal> for Value {
    fn from(n: Decimal) -> Value {
        Value::Number(n)
    }
}

/// FEEL's `string()` of a value: numbers without trailing zeros, temporal values in ISO 8601,
/// lists and contexts in FEEL literal syntax.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => write!(f, "{}", n.normalize()),
            Value::String(s) => f.write_str(s),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_nested(f, item)?;
                }
                f.write_str("]")
            }
            Value::Context(map) => {
                f.write_str("{")?;
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}:")?;
                    write_nested(f, v)?;
                }
                f.write_str("}")
            }
            Value::Date(d) => write!(f, "{d}"),
            Value::Time(t) => {
                write!(f, "{}", t.time)?;
                match t.offset_seconds {
                    Some(0) => f.write_str("Z"),
                    Some(s) => write_offset(f, s),
                    None => Ok(()),
                }
            }
            Value::DateTime(DateTimeValue::Local(dt)) => write!(f, "{dt}"),
            Value::DateTime(DateTimeValue::Zoned(z)) => write_zoned(f, z),
            Value::Duration(d) => write_duration(f, *d),
            Value::YearsMonths(months) => write_years_months(f, *months),
            Value::Range(r) => {
                let (open, start) = match &r.start {
                    Bound::Unbounded => ("(", None),
                    Bound::Open(v) => ("(", Some(v)),
                    Bound::Closed(v) => ("[", Some(v)),
                };
                let (close, end) = match &r.end {
                    Bound::Unbounded => (")", None),
                    Bound::Open(v) => (")", Some(v)),
                    Bound::Closed(v) => ("]", Some(v)),
                };
                f.write_str(open)?;
                if let Some(v) = start {
                    write_nested(f, v)?;
                }
                f.write_str("..")?;
                if let Some(v) = end {
                    write_nested(f, v)?;
                }
                f.write_str(close)
            }
        }
    }
}

fn write_nested(f: &mut fmt::Formatter<'_>, v: &Value) -> fmt::Result {
    match v {
        Value::String(s) => write!(f, "{s:?}"),
        other => write!(f, "{other}"),
    }
}

fn write_offset(f: &mut fmt::Formatter<'_>, seconds: i32) -> fmt::Result {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    write!(f, "{sign}{:02}:{:02}", s / 3600, (s % 3600) / 60)
}

fn write_zoned(f: &mut fmt::Formatter<'_>, z: &ZonedDateTime) -> fmt::Result {
    let tz = z.time_zone();
    match tz.iana_name() {
        Some(name) if name != "UTC" => write!(f, "{z}"),
        _ => {
            let offset: Offset = z.offset();
            write!(f, "{}", z.datetime())?;
            if offset.seconds() == 0 {
                f.write_str("Z")
            } else {
                write_offset(f, offset.seconds())
            }
        }
    }
}

fn write_duration(f: &mut fmt::Formatter<'_>, d: SignedDuration) -> fmt::Result {
    if d.is_zero() {
        return f.write_str("PT0S");
    }
    if d.is_negative() {
        f.write_str("-")?;
    }
    let d = d.abs();
    let total = d.as_secs();
    let nanos = d.subsec_nanos();
    let days = total / 86_400;
    let hours = (total % 86_400) / 3600;
    let minutes = (total % 3600) / 60;
    let seconds = total % 60;
    f.write_str("P")?;
    if days > 0 {
        write!(f, "{days}D")?;
    }
    if hours > 0 || minutes > 0 || seconds > 0 || nanos > 0 {
        f.write_str("T")?;
        if hours > 0 {
            write!(f, "{hours}H")?;
        }
        if minutes > 0 {
            write!(f, "{minutes}M")?;
        }
        if seconds > 0 || nanos > 0 {
            if nanos > 0 {
                let frac = format!("{:09}", nanos);
                write!(f, "{seconds}.{}S", frac.trim_end_matches('0'))?;
            } else {
                write!(f, "{seconds}S")?;
            }
        }
    }
    Ok(())
}

fn write_years_months(f: &mut fmt::Formatter<'_>, months: i64) -> fmt::Result {
    if months == 0 {
        return f.write_str("P0M");
    }
    if months < 0 {
        f.write_str("-")?;
    }
    let m = months.unsigned_abs();
    f.write_str("P")?;
    if m / 12 > 0 {
        write!(f, "{}Y", m / 12)?;
    }
    if !m.is_multiple_of(12) {
        write!(f, "{}M", m % 12)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_keep_their_decimal_value() {
        let v =
            Value::from_json(&serde_json::json!({"a": 0.1, "b": 12345678901234_i64, "c": 1.5e3}));
        let ctx = v.as_context().unwrap();
        assert_eq!(ctx["a"], Value::Number("0.1".parse().unwrap()));
        assert_eq!(ctx["b"], Value::Number(12345678901234_i64.into()));
        assert_eq!(ctx["c"], Value::Number(1500.into()));
        assert_eq!(
            v.to_json(),
            serde_json::json!({"a": 0.1, "b": 12345678901234_i64, "c": 1500})
        );
    }

    #[test]
    fn numbers_print_without_trailing_zeros() {
        assert_eq!(Value::Number("1.50".parse().unwrap()).to_string(), "1.5");
        assert_eq!(Value::Number("100".parse().unwrap()).to_string(), "100");
    }

    #[test]
    fn durations_print_in_iso_8601() {
        assert_eq!(
            Value::Duration(SignedDuration::from_secs(93_784)).to_string(),
            "P1DT2H3M4S"
        );
        assert_eq!(
            Value::Duration(SignedDuration::from_millis(-1500)).to_string(),
            "-PT1.5S"
        );
        assert_eq!(Value::YearsMonths(14).to_string(), "P1Y2M");
    }

    #[test]
    fn equality_follows_feel() {
        let one = Value::Number("1".parse().unwrap());
        let one_point_zero = Value::Number("1.0".parse().unwrap());
        assert_eq!(one.feel_eq(&one_point_zero), Some(true));
        assert_eq!(Value::Null.feel_eq(&Value::Null), Some(true));
        assert_eq!(one.feel_eq(&Value::from("1")), Some(false));
    }
}
