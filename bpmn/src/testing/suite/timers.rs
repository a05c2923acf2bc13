//! Timers: catch events, start events (dates, cycles, cron) and boundary events.

// Test code: a panic is how a scenario fails.
#![allow(clippy::unwrap_used)]

use super::*;

pub fn timer_catch_events_wait_for_duration_and_date<S: Store>(h: &mut Harness<S>) {
    h.deploy(TIMERS);
    let i = h.create("timers", json!({"deadline": "2024-01-01T01:00:00Z"}));
    h.advance(SignedDuration::from_secs(9));
    assert!(
        !h.trail()
            .contains(&"ELEMENT_COMPLETED wait-duration".to_owned())
    );
    let m = h.mark();
    h.advance(SignedDuration::from_secs(1));
    assert_eq!(
        h.trail_since(m),
        s(&[
            "TIMER_TRIGGERED",
            "ELEMENT_COMPLETING wait-duration",
            "ELEMENT_COMPLETED wait-duration",
            "SEQUENCE_FLOW_TAKEN f2",
            "ELEMENT_ACTIVATING wait-date",
            "ELEMENT_ACTIVATED wait-date",
        ])
    );
    let due = h.store.read(|kv| h.engine.next_due(kv)).unwrap();
    assert_eq!(due, Some("2024-01-01T01:00:00Z".parse().unwrap()));
    h.advance(SignedDuration::from_mins(59) + SignedDuration::from_secs(49));
    assert!(h.active(i));
    h.advance(SignedDuration::from_secs(1));
    assert!(!h.active(i));
}

pub fn timer_start_events_fire_by_date_and_cycle<S: Store>(h: &mut Harness<S>) {
    h.deploy(TIMER_START);
    let started = |h: &Harness<S>, id: &str| count(&h.trail(), &format!("ELEMENT_ACTIVATING {id}"));
    for _ in 0..5 {
        h.advance(SignedDuration::from_mins(1));
    }
    assert_eq!(started(h, "timer-start-cycle"), 3, "R3 fires three times");
    assert_eq!(started(h, "timer-start-date"), 0);
    h.now = "2030-01-01T08:00:00Z".parse().unwrap();
    assert_eq!(h.run(Command::Tick), Ok(Accepted::Done));
    assert_eq!(started(h, "timer-start-date"), 1);
    h.advance(SignedDuration::from_hours(24));
    assert_eq!(started(h, "timer-start-date"), 1, "a date fires once");
}

pub fn timer_cycles_as_cron_fire_when_the_cron_says<S: Store>(h: &mut Harness<S>) {
    // The harness starts on Monday 2024-01-01 at 00:00 UTC.
    h.deploy(CRON);
    let i = h.create("cron-reminder", json!({"schedule": "0 0 9 * * MON-FRI"}));
    let m = h.mark();
    h.advance(SignedDuration::from_hours(8));
    assert_eq!(count(&h.trail_since(m), "ELEMENT_COMPLETED reminded"), 0);
    assert_eq!(
        count(&h.trail_since(m), "ELEMENT_COMPLETED every-morning"),
        1
    );
    // A day at a time, for a week: nine o'clock on each weekday, none on the weekend.
    for _ in 0..7 {
        h.advance(SignedDuration::from_hours(24));
    }
    let trail = h.trail_since(m);
    assert_eq!(count(&trail, "ELEMENT_COMPLETED reminded"), 5);
    assert_eq!(count(&trail, "ELEMENT_COMPLETED every-morning"), 8);
    assert_contains(
        &trail,
        &[
            "TIMER_TRIGGERED",
            "ELEMENT_ACTIVATING weekday-nine",
            "ELEMENT_ACTIVATED weekday-nine",
            "ELEMENT_COMPLETING weekday-nine",
            "ELEMENT_COMPLETED weekday-nine",
            "SEQUENCE_FLOW_TAKEN r3",
        ],
    );
    assert!(h.active(i), "the reminders do not interrupt the review");
    h.complete("review", json!({}));
    assert!(!h.active(i));
    // The review's timer went with it.
    let m = h.mark();
    h.advance(SignedDuration::from_hours(24));
    assert_eq!(count(&h.trail_since(m), "ELEMENT_COMPLETED reminded"), 0);
}

pub fn interrupting_timer_boundary_terminates_the_task<S: Store>(h: &mut Harness<S>) {
    h.deploy(BOUNDARIES);
    let i = h.create("boundaries", json!({"orderId": "o-1"}));
    let work = h.job("work");
    let m = h.mark();
    for _ in 0..5 {
        h.advance(SignedDuration::from_mins(1));
    }
    let trail = h.trail_since(m);
    assert_contains(
        &trail,
        &[
            "TIMER_TRIGGERED",
            "ELEMENT_TERMINATING work",
            "ELEMENT_TERMINATED work",
            "ELEMENT_ACTIVATING timeout",
            "ELEMENT_ACTIVATED timeout",
            "ELEMENT_COMPLETING timeout",
            "ELEMENT_COMPLETED timeout",
            "SEQUENCE_FLOW_TAKEN f3",
        ],
    );
    assert!(
        h.events
            .iter()
            .any(|e| *e == Event::JobCanceled { key: work.key })
    );
    let late = h
        .run(Command::CompleteJob {
            key: work.key,
            variables: vars(json!({})),
        })
        .unwrap_err();
    assert_eq!(late.kind, RejectionKind::NotFound);
    // The two reminders (non-interrupting) still run.
    h.complete("remind", json!({}));
    assert!(h.active(i));
    h.complete("remind", json!({}));
    assert!(!h.active(i));
}

pub fn non_interrupting_timer_cycle_boundary_fires_repeatedly<S: Store>(h: &mut Harness<S>) {
    h.deploy(BOUNDARIES);
    let i = h.create("boundaries", json!({"orderId": "o-1"}));
    let m = h.mark();
    h.advance(SignedDuration::from_mins(1));
    assert_eq!(
        h.trail_since(m),
        s(&[
            "TIMER_TRIGGERED",
            "ELEMENT_ACTIVATING reminder",
            "ELEMENT_ACTIVATED reminder",
            "ELEMENT_COMPLETING reminder",
            "ELEMENT_COMPLETED reminder",
            "SEQUENCE_FLOW_TAKEN f4",
            "ELEMENT_ACTIVATING remind",
            "ELEMENT_ACTIVATED remind",
            "JOB_CREATED remind",
        ])
    );
    h.advance(SignedDuration::from_mins(1));
    h.advance(SignedDuration::from_mins(1));
    assert_eq!(
        count(&h.trail(), "ELEMENT_ACTIVATING reminder"),
        2,
        "R2: twice, then no more"
    );
    h.complete("work", json!({}));
    h.complete("remind", json!({}));
    assert!(h.active(i), "one reminder task still runs");
    h.complete("remind", json!({}));
    assert!(!h.active(i));
}
