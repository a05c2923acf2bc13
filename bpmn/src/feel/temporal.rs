//! Dates, times and durations: ISO 8601 parsing, arithmetic and properties, on jiff.
//!
//! Timers share this module: `P7D`, `R3/PT1H` and `2024-06-01T10:00:00Z` in a BPMN timer are
//! read by the same code as `duration("P7D")` in an expression.

use jiff::civil::{Date, DateTime, Time};
use jiff::fmt::temporal::{Pieces, PiecesOffset};
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Span, Timestamp, ZonedDateTime};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::value::{DateTimeValue, LocalTime, Value};

/// An ISO 8601 duration: a calendar part (months) and an exact part. FEEL keeps the two apart as
/// two types; timers accept both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsoDuration {
    pub months: i64,
    pub exact: SignedDuration,
}

impl IsoDuration {
    pub const ZERO: IsoDuration = IsoDuration {
        months: 0,
        exact: SignedDuration::ZERO,
    };

    /// Adds the duration to an instant, months first (in UTC), as timers do.
    pub fn add_to(&self, at: Timestamp) -> Option<Timestamp> {
        let mut t = at;
        if self.months != 0 {
            let zoned = t.to_zoned_datetime(TimeZone::UTC);
            t = zoned
                .checked_add(Span::new().try_months(self.months).ok()?)
                .ok()?
                .timestamp();
        }
        t.checked_add(self.exact).ok()
    }

    pub fn is_positive(&self) -> bool {
        self.months > 0 || (self.months == 0 && self.exact.is_positive())
    }
}

/// Parses `P1Y2M`, `P3DT4H5M6.5S`, `PT15M`, `P2W`, with an optional leading `-`.
pub fn parse_duration(text: &str) -> Option<IsoDuration> {
    let text = text.trim();
    let (negative, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let rest = rest.strip_prefix('P').or_else(|| rest.strip_prefix('p'))?;
    if rest.is_empty() {
        return None;
    }
    let mut months: i64 = 0;
    let mut nanos: i128 = 0;
    let mut in_time = false;
    let mut number = String::new();
    let mut any = false;
    for c in rest.chars() {
        match c {
            'T' | 't' => {
                if in_time || !number.is_empty() {
                    return None;
                }
                in_time = true;
            }
            '0'..='9' | '.' | ',' => number.push(if c == ',' { '.' } else { c }),
            unit => {
                if number.is_empty() {
                    return None;
                }
                let value: Decimal = number.parse().ok()?;
                number.clear();
                any = true;
                let unit = unit.to_ascii_uppercase();
                match (in_time, unit) {
                    (false, 'Y') => months = months.checked_add(whole(value)?.checked_mul(12)?)?,
                    (false, 'M') => months = months.checked_add(whole(value)?)?,
                    (false, 'W') => nanos += scaled(value, 7 * 86_400)?,
                    (false, 'D') => nanos += scaled(value, 86_400)?,
                    (true, 'H') => nanos += scaled(value, 3600)?,
                    (true, 'M') => nanos += scaled(value, 60)?,
                    (true, 'S') => nanos += scaled(value, 1)?,
                    _ => return None,
                }
            }
        }
    }
    if !number.is_empty() || !any {
        return None;
    }
    let mut exact = SignedDuration::try_from_nanos_i128(nanos)?;
    if negative {
        months = -months;
        exact = exact.checked_neg()?;
    }
    Some(IsoDuration { months, exact })
}

fn whole(value: Decimal) -> Option<i64> {
    if value.fract().is_zero() {
        value.to_i64()
    } else {
        None
    }
}

fn scaled(value: Decimal, seconds: i64) -> Option<i128> {
    let nanos = value
        .checked_mul(Decimal::from(seconds))?
        .checked_mul(Decimal::from(1_000_000_000))?;
    nanos.trunc().to_i128()
}

/// Reads a FEEL `duration("...")`: years-and-months or days-and-time, never both.
pub fn duration_value(text: &str) -> Option<Value> {
    let d = parse_duration(text)?;
    let upper = text.to_ascii_uppercase();
    let (date_part, time_part) = match upper.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (upper.as_str(), None),
    };
    let calendar = date_part.contains(['Y', 'M']);
    let exact = date_part.contains(['D', 'W']) || time_part.is_some();
    match (calendar, exact) {
        (true, false) => Some(Value::YearsMonths(d.months)),
        (false, true) => Some(Value::Duration(d.exact)),
        _ => None,
    }
}

/// Reads `2024-01-31`.
pub fn parse_date(text: &str) -> Option<Date> {
    let text = text.trim();
    if text.len() < 10 || text.contains(['T', 't', ' ']) {
        return None;
    }
    text.parse::<Date>().ok()
}

/// Reads `10:30:00`, `10:30:00.5Z`, `10:30:00+02:00`.
pub fn parse_time(text: &str) -> Option<LocalTime> {
    let text = text.trim();
    let (clock, offset) = split_offset(text)?;
    let time = clock.parse::<Time>().ok()?;
    Some(LocalTime {
        time,
        offset_seconds: offset,
    })
}

fn split_offset(text: &str) -> Option<(&str, Option<i32>)> {
    if let Some(clock) = text.strip_suffix(['Z', 'z']) {
        return Some((clock, Some(0)));
    }
    if let Some(idx) = text.rfind(['+', '-']) {
        let (clock, off) = text.split_at(idx);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let digits = &off[1..];
        if !digits.chars().all(|c| c.is_ascii_digit() || c == ':') {
            return None;
        }
        let (h, m) = match digits.split_once(':') {
            Some((h, m)) => (h, m),
            None if digits.len() == 4 => digits.split_at(2),
            None => (digits, "0"),
        };
        let h: i32 = h.parse().ok()?;
        let m: i32 = m.parse().ok()?;
        if h > 18 || m > 59 {
            return None;
        }
        return Some((clock, Some(sign * (h * 3600 + m * 60))));
    }
    Some((text, None))
}

/// Reads `2024-01-31T10:00:00` (local), `...Z`, `...+02:00`, `...[Europe/Berlin]` and FEEL's
/// `...@Europe/Berlin`.
pub fn parse_date_time(text: &str) -> Option<DateTimeValue> {
    let text = text.trim();
    if !text.contains(['T', 't']) {
        return None;
    }
    let owned;
    let text = match text.split_once('@') {
        Some((dt, zone)) => {
            owned = format!("{dt}[{zone}]");
            owned.as_str()
        }
        None => text,
    };
    let pieces = Pieces::parse(text).ok()?;
    let time = pieces.time()?;
    let datetime = DateTime::from_parts(pieces.date(), time);
    if let Some(annotation) = pieces.time_zone_annotation() {
        let tz = annotation.to_time_zone().ok()?;
        let zoned = match pieces.offset() {
            Some(PiecesOffset::Numeric(n)) => {
                let ts = n.offset().to_timestamp(datetime).ok()?;
                ts.to_zoned_datetime(tz)
            }
            _ => datetime.to_zoned_datetime(tz).ok()?,
        };
        return Some(DateTimeValue::Zoned(zoned));
    }
    match pieces.offset() {
        Some(PiecesOffset::Zulu) => Some(DateTimeValue::Zoned(
            Offset::UTC
                .to_timestamp(datetime)
                .ok()?
                .to_zoned_datetime(TimeZone::UTC),
        )),
        Some(PiecesOffset::Numeric(n)) => {
            let offset = n.offset();
            let ts = offset.to_timestamp(datetime).ok()?;
            Some(DateTimeValue::Zoned(
                ts.to_zoned_datetime(TimeZone::fixed(offset)),
            ))
        }
        _ => Some(DateTimeValue::Local(datetime)),
    }
}

/// Reads the text of an `@"..."` literal: a date, time, date and time, or duration.
pub(crate) fn parse_literal(text: &str) -> Option<Value> {
    let t = text.trim();
    if t.starts_with(['P', 'p']) || t.starts_with("-P") {
        return duration_value(t);
    }
    if let Some(dt) = parse_date_time(t) {
        return Some(Value::DateTime(dt));
    }
    if let Some(d) = parse_date(t) {
        return Some(Value::Date(d));
    }
    parse_time(t).map(Value::Time)
}

/// Reads an instant for a timer: a zoned date-time, or a local one taken as UTC.
pub fn parse_instant(text: &str) -> Option<Timestamp> {
    match parse_date_time(text)? {
        DateTimeValue::Zoned(z) => Some(z.timestamp()),
        DateTimeValue::Local(dt) => Offset::UTC.to_timestamp(dt).ok(),
    }
}

/// The instant a FEEL value names, if it names one.
pub fn instant_of(v: &Value) -> Option<Timestamp> {
    match v {
        Value::DateTime(DateTimeValue::Zoned(z)) => Some(z.timestamp()),
        Value::DateTime(DateTimeValue::Local(dt)) => Offset::UTC.to_timestamp(*dt).ok(),
        Value::String(s) => parse_instant(s),
        _ => None,
    }
}

/// `a + b` where at least one side is temporal; `None` when the types do not add.
pub(crate) fn add(a: &Value, b: &Value) -> Option<Value> {
    match (a, b) {
        (Value::Duration(x), Value::Duration(y)) => x.checked_add(*y).map(Value::Duration),
        (Value::YearsMonths(x), Value::YearsMonths(y)) => x.checked_add(*y).map(Value::YearsMonths),
        (Value::Duration(_) | Value::YearsMonths(_), other) => add(other, a),
        (Value::Date(d), Value::Duration(dur)) => {
            let dt = d.to_datetime(Time::midnight()).checked_add(*dur).ok()?;
            Some(Value::Date(dt.date()))
        }
        (Value::Date(d), Value::YearsMonths(m)) => d
            .checked_add(Span::new().try_months(*m).ok()?)
            .ok()
            .map(Value::Date),
        (Value::DateTime(DateTimeValue::Local(dt)), Value::Duration(dur)) => dt
            .checked_add(*dur)
            .ok()
            .map(|r| Value::DateTime(DateTimeValue::Local(r))),
        (Value::DateTime(DateTimeValue::Local(dt)), Value::YearsMonths(m)) => dt
            .checked_add(Span::new().try_months(*m).ok()?)
            .ok()
            .map(|r| Value::DateTime(DateTimeValue::Local(r))),
        (Value::DateTime(DateTimeValue::Zoned(z)), Value::Duration(dur)) => z
            .checked_add(*dur)
            .ok()
            .map(|r| Value::DateTime(DateTimeValue::Zoned(r))),
        (Value::DateTime(DateTimeValue::Zoned(z)), Value::YearsMonths(m)) => z
            .checked_add(Span::new().try_months(*m).ok()?)
            .ok()
            .map(|r| Value::DateTime(DateTimeValue::Zoned(r))),
        (Value::Time(t), Value::Duration(dur)) => Some(Value::Time(LocalTime {
            time: t.time.wrapping_add(*dur),
            offset_seconds: t.offset_seconds,
        })),
        _ => None,
    }
}

/// `a - b` where at least one side is temporal.
pub(crate) fn sub(a: &Value, b: &Value) -> Option<Value> {
    match (a, b) {
        (Value::Duration(_), Value::Duration(y)) => add(a, &Value::Duration(y.checked_neg()?)),
        (Value::YearsMonths(_), Value::YearsMonths(y)) => {
            add(a, &Value::YearsMonths(y.checked_neg()?))
        }
        (Value::Date(_) | Value::DateTime(_) | Value::Time(_), Value::Duration(y)) => {
            add(a, &Value::Duration(y.checked_neg()?))
        }
        (Value::Date(_) | Value::DateTime(_), Value::YearsMonths(y)) => {
            add(a, &Value::YearsMonths(y.checked_neg()?))
        }
        (Value::Date(x), Value::Date(y)) => Some(Value::Duration(x.duration_since(*y))),
        (Value::DateTime(x), Value::DateTime(y)) => match (x, y) {
            (DateTimeValue::Local(x), DateTimeValue::Local(y)) => {
                Some(Value::Duration(x.duration_since(*y)))
            }
            (DateTimeValue::Zoned(x), DateTimeValue::Zoned(y)) => {
                Some(Value::Duration(x.duration_since(y)))
            }
            _ => None,
        },
        (Value::Time(x), Value::Time(y)) if x.offset_seconds == y.offset_seconds => {
            Some(Value::Duration(x.time.duration_since(y.time)))
        }
        _ => None,
    }
}

/// `duration * number` and `duration / number`.
pub(crate) fn scale(d: &Value, factor: Decimal, divide: bool) -> Option<Value> {
    match d {
        Value::Duration(dur) => {
            let nanos = Decimal::from_i128_with_scale(dur.as_nanos(), 0);
            let result = if divide {
                nanos.checked_div(factor)?
            } else {
                nanos.checked_mul(factor)?
            };
            SignedDuration::try_from_nanos_i128(result.trunc().to_i128()?).map(Value::Duration)
        }
        Value::YearsMonths(m) => {
            let months = Decimal::from(*m);
            let result = if divide {
                months.checked_div(factor)?
            } else {
                months.checked_mul(factor)?
            };
            result.trunc().to_i64().map(Value::YearsMonths)
        }
        _ => None,
    }
}

/// `duration / duration` as a number.
pub(crate) fn ratio(a: &Value, b: &Value) -> Option<Value> {
    match (a, b) {
        (Value::Duration(x), Value::Duration(y)) if !y.is_zero() => {
            let x = Decimal::from_i128_with_scale(x.as_nanos(), 0);
            let y = Decimal::from_i128_with_scale(y.as_nanos(), 0);
            x.checked_div(y).map(Value::Number)
        }
        (Value::YearsMonths(x), Value::YearsMonths(y)) if *y != 0 => Decimal::from(*x)
            .checked_div(Decimal::from(*y))
            .map(Value::Number),
        _ => None,
    }
}

/// A property of a temporal value (`d.year`, `t.hour`, `dur.days`).
pub(crate) fn property(v: &Value, name: &str) -> Option<Value> {
    let num = |n: i64| Some(Value::Number(Decimal::from(n)));
    let date_prop = |d: Date| match name {
        "year" => num(i64::from(d.year())),
        "month" => num(i64::from(d.month())),
        "day" => num(i64::from(d.day())),
        "weekday" => num(i64::from(d.weekday().to_monday_one_offset())),
        _ => None,
    };
    let time_prop = |t: Time| match name {
        "hour" => num(i64::from(t.hour())),
        "minute" => num(i64::from(t.minute())),
        "second" => num(i64::from(t.second())),
        _ => None,
    };
    match v {
        Value::Date(d) => date_prop(*d),
        Value::Time(t) => match name {
            "time offset" | "timeOffset" => t
                .offset_seconds
                .map(|s| Value::Duration(SignedDuration::from_secs(i64::from(s)))),
            _ => time_prop(t.time),
        },
        Value::DateTime(DateTimeValue::Local(dt)) => {
            date_prop(dt.date()).or_else(|| time_prop(dt.time()))
        }
        Value::DateTime(DateTimeValue::Zoned(z)) => match name {
            "time offset" | "timeOffset" => Some(Value::Duration(SignedDuration::from_secs(
                i64::from(z.offset().seconds()),
            ))),
            "timezone" => z.time_zone().iana_name().map(Value::from),
            _ => date_prop(z.date()).or_else(|| time_prop(z.time())),
        },
        Value::Duration(d) => {
            let secs = d.as_secs();
            match name {
                "days" => num(secs / 86_400),
                "hours" => num((secs % 86_400) / 3600),
                "minutes" => num((secs % 3600) / 60),
                "seconds" => num(secs % 60),
                _ => None,
            }
        }
        Value::YearsMonths(m) => match name {
            "years" => num(m / 12),
            "months" => num(m % 12),
            _ => None,
        },
        _ => None,
    }
}

/// The date and time at `now` in UTC, as FEEL's `now()` returns it.
pub(crate) fn now_value(now: Timestamp) -> Value {
    Value::DateTime(DateTimeValue::Zoned(now.to_zoned_datetime(TimeZone::UTC)))
}

/// The UTC date at `now`, as FEEL's `today()` returns it.
pub(crate) fn today_value(now: Timestamp) -> Value {
    Value::Date(now.to_zoned_datetime(TimeZone::UTC).date())
}

/// Builds a zoned or local date-time from a date and a time value.
pub(crate) fn combine(date: Date, time: LocalTime) -> Option<DateTimeValue> {
    let dt = DateTime::from_parts(date, time.time);
    match time.offset_seconds {
        None => Some(DateTimeValue::Local(dt)),
        Some(s) => {
            let offset = Offset::from_seconds(s).ok()?;
            let ts = offset.to_timestamp(dt).ok()?;
            Some(DateTimeValue::Zoned(
                ts.to_zoned_datetime(TimeZone::fixed(offset)),
            ))
        }
    }
}

/// Convenience for zoned values in tests and callers.
pub fn zoned(ts: Timestamp) -> ZonedDateTime {
    ts.to_zoned_datetime(TimeZone::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_with_non_ascii_text_are_refused() {
        // Found by the FEEL fuzz target: a multi-byte character where offset digits belong.
        assert!(parse_time(".43-1\u{84}i").is_none());
        assert!(parse_literal(".43-1\u{84}i").is_none());
    }

    #[test]
    fn durations_parse() {
        let d = parse_duration("P1DT2H30M").unwrap();
        assert_eq!(d.months, 0);
        assert_eq!(d.exact, SignedDuration::from_secs(86_400 + 2 * 3600 + 1800));
        assert_eq!(parse_duration("P1Y2M").unwrap().months, 14);
        assert_eq!(
            parse_duration("PT1.5S").unwrap().exact,
            SignedDuration::from_millis(1500)
        );
        assert_eq!(
            parse_duration("-PT1M").unwrap().exact,
            SignedDuration::from_secs(-60)
        );
        assert!(parse_duration("P").is_none());
        assert!(parse_duration("PT").is_none());
        assert!(parse_duration("P1H").is_none());
        assert!(parse_duration("1D").is_none());
    }

    #[test]
    fn feel_durations_keep_their_kind() {
        assert_eq!(duration_value("P2M"), Some(Value::YearsMonths(2)));
        assert_eq!(
            duration_value("PT2M"),
            Some(Value::Duration(SignedDuration::from_secs(120)))
        );
        assert_eq!(duration_value("P1Y1D"), None);
    }

    #[test]
    fn date_times_parse_with_and_without_zones() {
        assert!(matches!(
            parse_date_time("2024-01-01T10:00:00"),
            Some(DateTimeValue::Local(_))
        ));
        let z = parse_date_time("2024-01-01T10:00:00Z").unwrap();
        let plus = parse_date_time("2024-01-01T12:00:00+02:00").unwrap();
        let berlin = parse_date_time("2024-01-01T11:00:00@Europe/Berlin").unwrap();
        let ts = |v: DateTimeValue| match v {
            DateTimeValue::Zoned(z) => z.timestamp(),
            DateTimeValue::Local(_) => unreachable!(),
        };
        assert_eq!(ts(z.clone()), ts(plus));
        assert_eq!(ts(z), ts(berlin));
    }

    #[test]
    fn month_arithmetic_clamps_to_the_end_of_the_month() {
        let d = Value::Date(parse_date("2024-01-31").unwrap());
        assert_eq!(
            add(&d, &Value::YearsMonths(1)),
            Some(Value::Date(parse_date("2024-02-29").unwrap()))
        );
    }
}
