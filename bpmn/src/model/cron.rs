//! Cron expressions for timer cycles, as Zeebe reads them (Spring's six fields, in UTC):
//! `second minute hour day-of-month month day-of-week`, each `*`, `?`, a number, a name
//! (`JAN`–`DEC`, `SUN`–`SAT`), a range `a-b`, a step `*/n` or `a-b/n` or `a/n`, or a list of
//! these. Day of week 0 and 7 are Sunday. When both day fields are restricted, a day must
//! match both. Quartz's `L`, `W` and `#` are refused with a message that says so.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// A parsed cron expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// The day fields as written were `*` or `?`.
    any_day: bool,
    any_weekday: bool,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// How far ahead a schedule is searched before it is called empty (e.g. `0 0 0 30 2 *`).
const HORIZON_DAYS: i64 = 366 * 5;

impl Cron {
    pub fn parse(text: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(format!(
                "'{text}' has {} fields; a cron expression has six: second minute hour day-of-month month day-of-week (e.g. 0 0 9 * * MON-FRI)",
                fields.len()
            ));
        }
        let field = |i: usize, name: &str, lo: u32, hi: u32, names: &[&str]| {
            bits(fields[i], lo, hi, names).map_err(|e| format!("'{text}': {name} {e}"))
        };
        let mut weekdays = field(5, "day of week", 0, 7, &WEEKDAYS)?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & !(1 << 7);
        }
        Ok(Cron {
            seconds: field(0, "second", 0, 59, &[])?,
            minutes: field(1, "minute", 0, 59, &[])?,
            hours: field(2, "hour", 0, 23, &[])?,
            days: field(3, "day of month", 1, 31, &[])?,
            months: field(4, "month", 1, 12, &MONTHS)?,
            weekdays,
            any_day: matches!(fields[3], "*" | "?"),
            any_weekday: matches!(fields[5], "*" | "?"),
        })
    }

    fn day_matches(&self, d: Date) -> bool {
        let weekday = u32::from(d.weekday().to_sunday_zero_offset().unsigned_abs());
        let day = has(self.days, u32::from(d.day().unsigned_abs()));
        let wd = has(self.weekdays, weekday);
        has(self.months, u32::from(d.month().unsigned_abs()))
            && match (self.any_day, self.any_weekday) {
                (true, true) => true,
                (false, true) => day,
                (true, false) => wd,
                (false, false) => day && wd,
            }
    }

    /// The first time strictly after `after` that matches, within five years.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let start = TimeZone::UTC.to_datetime(after);
        let mut date = start.date();
        for day in 0..HORIZON_DAYS {
            if self.day_matches(date) {
                for h in 0..24u32 {
                    if !has(self.hours, h) {
                        continue;
                    }
                    for m in 0..60u32 {
                        if !has(self.minutes, m) {
                            continue;
                        }
                        for s in 0..60u32 {
                            if !has(self.seconds, s) {
                                continue;
                            }
                            let t = TimeZone::UTC
                                .to_timestamp(date.at(h as i8, m as i8, s as i8, 0))
                                .ok()?;
                            if day > 0 || t > after {
                                return Some(t);
                            }
                        }
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }
}

fn has(set: u64, n: u32) -> bool {
    n < 64 && set & (1 << n) != 0
}

/// The values one field allows, as bits.
fn bits(field: &str, lo: u32, hi: u32, names: &[&str]) -> Result<u64, String> {
    if field.contains(['L', 'W', '#']) && names.is_empty() || field.contains('#') {
        return Err(format!(
            "'{field}': L, W and # (Quartz's last, weekday and nth) are not supported; list the days instead"
        ));
    }
    let value = |v: &str| -> Result<u32, String> {
        let upper = v.to_ascii_uppercase();
        if let Some(i) = names.iter().position(|n| *n == upper) {
            // Month names count from 1, weekday names from 0 (Sunday).
            return Ok(if names.len() == 12 {
                i as u32 + 1
            } else {
                i as u32
            });
        }
        let n: u32 = v
            .parse()
            .map_err(|_| format!("'{v}' is not a number from {lo} to {hi}"))?;
        if n < lo || n > hi {
            return Err(format!("{n} is outside {lo}-{hi}"));
        }
        Ok(n)
    };
    let mut out = 0u64;
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    format!("'{part}': the step after / must be a number above 0")
                })?;
                (r, step)
            }
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" | "?" => (lo, hi),
            r => match r.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                // `a/n` runs from a to the end; a lone value is itself.
                None if step > 1 => (value(r)?, hi),
                None => {
                    let v = value(r)?;
                    (v, v)
                }
            },
        };
        if from > to {
            return Err(format!("'{part}': the range runs backwards"));
        }
        let mut v = from;
        while v <= to {
            out |= 1 << v;
            v += step;
        }
    }
    if out == 0 {
        return Err(format!("'{field}' allows no value"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a timestamp")
    }

    #[test]
    fn weekday_mornings() {
        let c = Cron::parse("0 0 9 * * MON-FRI").expect("parses");
        // Friday 2026-11-27 08:00 → 09:00 the same day; after that, Monday.
        assert_eq!(
            c.next_after(at("2026-11-27T08:00:00Z")),
            Some(at("2026-11-27T09:00:00Z"))
        );
        assert_eq!(
            c.next_after(at("2026-11-27T09:00:00Z")),
            Some(at("2026-11-30T09:00:00Z"))
        );
    }

    #[test]
    fn steps_lists_and_names() {
        let c = Cron::parse("*/15 * * * * ?").expect("parses");
        assert_eq!(
            c.next_after(at("2026-01-01T00:00:07Z")),
            Some(at("2026-01-01T00:00:15Z"))
        );
        let c = Cron::parse("0 30 8,17 1 JAN,jul *").expect("parses");
        assert_eq!(
            c.next_after(at("2026-02-01T00:00:00Z")),
            Some(at("2026-07-01T08:30:00Z"))
        );
        let c = Cron::parse("0 0 12 * * 7").expect("parses");
        assert_eq!(
            c.next_after(at("2026-11-26T00:00:00Z")),
            Some(at("2026-11-29T12:00:00Z"))
        );
        let c = Cron::parse("0 0 0 13 * FRI").expect("both day fields must match");
        assert_eq!(
            c.next_after(at("2026-01-01T00:00:00Z")),
            Some(at("2026-02-13T00:00:00Z"))
        );
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let e = Cron::parse("0 0 9 * *").expect_err("five fields");
        assert!(e.contains("has 5 fields"), "{e}");
        let e = Cron::parse("0 61 * * * *").expect_err("minute 61");
        assert!(e.contains("minute 61 is outside 0-59"), "{e}");
        let e = Cron::parse("0 0 0 L * ?").expect_err("L");
        assert!(e.contains("not supported"), "{e}");
        let e = Cron::parse("0 0 0 ? * MON#2").expect_err("#");
        assert!(e.contains("not supported"), "{e}");
        assert_eq!(
            Cron::parse("0 0 0 30 2 ?")
                .expect("parses")
                .next_after(at("2026-01-01T00:00:00Z")),
            None
        );
    }
}
