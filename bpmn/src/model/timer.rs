//! Timer definitions: when a timer event fires, from a duration, a date or a repeating cycle.
//!
//! `PT10S` fires ten seconds after the event activates; `2024-06-01T10:00:00Z` fires then;
//! `R3/PT1H` fires three times an hour apart; `R/2024-06-01T10:00:00Z/P1D` fires every day from
//! that date on; a cycle can also be a cron expression (`0 0 9 * * MON-FRI`, see [`super::cron`]).
//! Values come from static text or from a FEEL expression.

use jiff::Timestamp;

use crate::feel::temporal::{self, IsoDuration};
use crate::feel::{Expression, Value};

#[derive(Debug)]
pub struct TimerDef {
    pub kind: TimerKind,
    pub expr: Expression,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    Duration,
    Date,
    Cycle,
}

impl TimerKind {
    pub fn name(self) -> &'static str {
        match self {
            TimerKind::Duration => "timeDuration",
            TimerKind::Date => "timeDate",
            TimerKind::Cycle => "timeCycle",
        }
    }
}

/// A repeating interval `R[n]/[start/]interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cycle {
    /// How many times it fires; `None` is forever.
    pub repetitions: Option<u32>,
    pub start: Option<Timestamp>,
    pub interval: IsoDuration,
}

/// When a timer fires next, and how it repeats after that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub due: Timestamp,
    /// Firings left, this one included (`None` is forever), and the interval; `None` for
    /// one-shot timers.
    pub repeat: Option<(Option<u32>, IsoDuration)>,
}

impl Schedule {
    /// The schedule after firing at `due`, if the timer repeats.
    pub fn next(&self) -> Option<Schedule> {
        let (left, interval) = self.repeat?;
        if interval == IsoDuration::ZERO {
            return None; // a cron schedule: the cron says when next
        }
        let left = match left {
            Some(0) => return None,
            Some(n) => Some(n - 1),
            None => None,
        };
        if left == Some(0) {
            return None;
        }
        let due = interval.add_to(self.due)?;
        Some(Schedule {
            due,
            repeat: Some((left, interval)),
        })
    }
}

fn duration_error(text: &str) -> String {
    let upper = text.to_ascii_uppercase();
    let hint = match upper.split_once('T') {
        Some((_, time)) if time.contains(['D', 'W', 'Y']) => {
            "; days, weeks and years go before the T (P7D, P1DT2H)"
        }
        _ => "",
    };
    format!("'{text}' is not an ISO 8601 duration such as PT10S or P7D{hint}")
}

/// The first time after `now` on the grid `start + k * interval`.
fn next_boundary(start: Timestamp, interval: IsoDuration, now: Timestamp) -> Option<Timestamp> {
    if interval.months == 0 {
        let step = interval.exact.as_nanos();
        let behind = now.duration_since(start).as_nanos();
        let k = behind / step + 1;
        let offset = jiff::SignedDuration::try_from_nanos_i128(k.checked_mul(step)?)?;
        return start.checked_add(offset).ok();
    }
    // Calendar intervals: at most twelve steps a year, so stepping is cheap.
    let mut t = start;
    while t <= now {
        t = interval.add_to(t)?;
    }
    Some(t)
}

/// Reads `R/PT10S`, `R3/PT1H`, `R5/2024-01-01T00:00:00Z/P1D`.
pub fn parse_cycle(text: &str) -> Option<Cycle> {
    let text = text.trim();
    let mut parts = text.split('/');
    let r = parts.next()?;
    let reps = r.strip_prefix('R')?;
    let repetitions = if reps.is_empty() {
        None
    } else {
        let n: i64 = reps.parse().ok()?;
        // R-1 is "forever" in ISO 8601.
        if n < 0 {
            None
        } else {
            Some(u32::try_from(n).ok()?)
        }
    };
    let rest: Vec<&str> = parts.collect();
    let (start, interval) = match rest.as_slice() {
        [interval] => (None, temporal::parse_duration(interval)?),
        [start, interval] => (
            Some(temporal::parse_instant(start)?),
            temporal::parse_duration(interval)?,
        ),
        _ => return None,
    };
    if !interval.is_positive() {
        return None;
    }
    Some(Cycle {
        repetitions,
        start,
        interval,
    })
}

impl TimerDef {
    /// Checks static timer text at deployment; `None` when it is fine or an expression.
    pub fn static_error(&self) -> Option<String> {
        if !self.expr.is_constant() {
            return None;
        }
        let text = self.expr.source();
        self.schedule_from(&Value::from(text), Timestamp::UNIX_EPOCH)
            .err()
    }

    /// When the timer fires, evaluated at `now` from the value of its expression.
    pub fn schedule_from(&self, value: &Value, now: Timestamp) -> Result<Schedule, String> {
        match self.kind {
            TimerKind::Duration => {
                let d = match value {
                    Value::Duration(d) => IsoDuration {
                        months: 0,
                        exact: *d,
                    },
                    Value::YearsMonths(m) => IsoDuration {
                        months: *m,
                        exact: jiff::SignedDuration::ZERO,
                    },
                    Value::String(s) => {
                        temporal::parse_duration(s).ok_or_else(|| duration_error(s))?
                    }
                    other => {
                        return Err(format!(
                            "expected a duration but found a {}",
                            other.type_name()
                        ));
                    }
                };
                let due = d.add_to(now).ok_or("the duration is out of range")?;
                Ok(Schedule {
                    due: due.max(now),
                    repeat: None,
                })
            }
            TimerKind::Date => {
                let due = temporal::instant_of(value).ok_or_else(|| match value {
                    Value::String(s) => {
                        format!("'{s}' is not an ISO 8601 date-time such as 2024-06-01T10:00:00Z")
                    }
                    other => format!("expected a date and time but found a {}", other.type_name()),
                })?;
                Ok(Schedule { due, repeat: None })
            }
            TimerKind::Cycle => {
                let text = match value {
                    Value::String(s) => s.as_str(),
                    other => {
                        return Err(format!(
                            "expected a cycle such as R3/PT10S but found a {}",
                            other.type_name()
                        ));
                    }
                };
                let Some(cycle) = parse_cycle(text) else {
                    // Not an ISO cycle: a cron expression, which fires forever. Its schedule
                    // has no interval; the engine asks the cron for each next firing.
                    let cron = super::cron::Cron::parse(text).map_err(|e| {
                        format!("'{text}' is neither a repeating interval such as R/PT10S, R3/PT1H or R/2024-06-01T10:00:00Z/P1D nor a cron expression: {e}")
                    })?;
                    let due = cron
                        .next_after(now)
                        .ok_or_else(|| format!("the cron expression '{text}' never fires"))?;
                    return Ok(Schedule {
                        due,
                        repeat: Some((None, IsoDuration::ZERO)),
                    });
                };
                let due = match cycle.start {
                    Some(start) if start > now => start,
                    Some(start) => next_boundary(start, cycle.interval, now)
                        .ok_or("the cycle is out of range")?,
                    None => cycle
                        .interval
                        .add_to(now)
                        .ok_or("the cycle is out of range")?,
                };
                if cycle.repetitions == Some(0) {
                    return Err(format!("'{text}' repeats zero times"));
                }
                Ok(Schedule {
                    due,
                    repeat: Some((cycle.repetitions, cycle.interval)),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn cycles_repeat_the_given_number_of_times() {
        let def = TimerDef {
            kind: TimerKind::Cycle,
            expr: Expression::constant(Value::from("R3/PT10S")),
        };
        let s = def
            .schedule_from(&Value::from("R3/PT10S"), at("2024-01-01T00:00:00Z"))
            .unwrap();
        assert_eq!(s.due, at("2024-01-01T00:00:10Z"));
        let s2 = s.next().unwrap();
        assert_eq!(s2.due, at("2024-01-01T00:00:20Z"));
        let s3 = s2.next().unwrap();
        assert_eq!(s3.due, at("2024-01-01T00:00:30Z"));
        assert_eq!(s3.next(), None);
    }

    #[test]
    fn infinite_cycles_never_end() {
        let c = parse_cycle("R/PT1H").unwrap();
        assert_eq!(c.repetitions, None);
        let def = TimerDef {
            kind: TimerKind::Cycle,
            expr: Expression::constant(Value::from("R/PT1H")),
        };
        let mut s = def
            .schedule_from(&Value::from("R/PT1H"), at("2024-01-01T00:00:00Z"))
            .unwrap();
        for _ in 0..100 {
            s = s.next().unwrap();
        }
        assert_eq!(s.due, at("2024-01-05T05:00:00Z"));
    }

    #[test]
    fn cycles_with_a_start_date() {
        let c = parse_cycle("R5/2024-06-01T10:00:00Z/P1D").unwrap();
        assert_eq!(c.start, Some(at("2024-06-01T10:00:00Z")));
        assert_eq!(c.repetitions, Some(5));
    }

    #[test]
    fn bad_text_is_explained() {
        let def = TimerDef {
            kind: TimerKind::Duration,
            expr: Expression::constant(Value::from("10 seconds")),
        };
        assert!(
            def.static_error()
                .unwrap()
                .contains("not an ISO 8601 duration")
        );
        assert!(parse_cycle("PT10S").is_none());
        assert!(parse_cycle("R/PT0S").is_none());
    }
}
