//! Gateways: exclusive, parallel, inclusive and event-based.

// Test code: a panic is how a scenario fails.
#![allow(clippy::unwrap_used)]

use super::*;

pub fn exclusive_gateway_takes_first_true_condition_or_default<S: Store>(h: &mut Harness<S>) {
    h.deploy(EXCLUSIVE);
    for (amount, flow, end) in [
        (5000, "big", "end-big"),
        (500, "medium", "end-medium"),
        (5, "small", "end-small"),
    ] {
        let m = h.mark();
        let i = h.create("exclusive", json!({"amount": amount}));
        assert_contains(
            &h.trail_since(m),
            &[
                "ELEMENT_ACTIVATING amount-ok",
                "ELEMENT_ACTIVATED amount-ok",
                "ELEMENT_COMPLETING amount-ok",
                "ELEMENT_COMPLETED amount-ok",
                &format!("SEQUENCE_FLOW_TAKEN {flow}"),
                &format!("ELEMENT_ACTIVATING {end}"),
            ],
        );
        assert_eq!(
            count(&h.trail_since(m), "SEQUENCE_FLOW_TAKEN big")
                + count(&h.trail_since(m), "SEQUENCE_FLOW_TAKEN medium")
                + count(&h.trail_since(m), "SEQUENCE_FLOW_TAKEN small"),
            1
        );
        assert!(!h.active(i));
    }
}

pub fn exclusive_gateway_without_match_raises_incident_until_resolved<S: Store>(
    h: &mut Harness<S>,
) {
    h.deploy(EXCLUSIVE_NO_DEFAULT);
    let m = h.mark();
    let i = h.create("exclusive-no-default", json!({}));
    let trail = h.trail_since(m);
    assert_eq!(
        trail[trail.len() - 2..],
        s(&["ELEMENT_ACTIVATING gw", "INCIDENT_CREATED gw"])
    );
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].kind, IncidentKind::Condition);
    assert_eq!(
        incidents[0].message,
        "expected at least one condition to evaluate to true, or to have a default flow (no variable found with name 'approved')"
    );
    assert!(h.active(i));
    // Fix the data, then retry.
    assert_eq!(
        h.run(Command::SetVariables {
            scope: i,
            variables: vars(json!({"approved": false})),
            local: false
        }),
        Ok(Accepted::Done)
    );
    let m = h.mark();
    assert_eq!(
        h.run(Command::ResolveIncident {
            key: incidents[0].key
        }),
        Ok(Accepted::Done)
    );
    assert_contains(
        &h.trail_since(m),
        &[
            "INCIDENT_RESOLVED",
            "ELEMENT_ACTIVATED gw",
            "ELEMENT_COMPLETING gw",
            "ELEMENT_COMPLETED gw",
            "SEQUENCE_FLOW_TAKEN to-no",
        ],
    );
    assert!(h.incidents().is_empty());
    assert!(!h.active(i));
}

pub fn parallel_gateway_forks_and_joins<S: Store>(h: &mut Harness<S>) {
    h.deploy(PARALLEL);
    let m = h.mark();
    let i = h.create("parallel", json!({}));
    assert_contains(
        &h.trail_since(m),
        &[
            "ELEMENT_COMPLETED fork",
            "SEQUENCE_FLOW_TAKEN fa",
            "SEQUENCE_FLOW_TAKEN fb",
            "ELEMENT_ACTIVATING a",
            "ELEMENT_ACTIVATED a",
            "JOB_CREATED a",
            "ELEMENT_ACTIVATING b",
            "ELEMENT_ACTIVATED b",
            "JOB_CREATED b",
        ],
    );
    let m = h.mark();
    h.complete("b", json!({}));
    // One token waits at the join.
    assert_eq!(
        h.trail_since(m),
        s(&[
            "JOB_COMPLETED",
            "ELEMENT_COMPLETING b",
            "ELEMENT_COMPLETED b",
            "SEQUENCE_FLOW_TAKEN jb"
        ])
    );
    let m = h.mark();
    h.complete("a", json!({}));
    assert_eq!(
        h.trail_since(m),
        s(&[
            "JOB_COMPLETED",
            "ELEMENT_COMPLETING a",
            "ELEMENT_COMPLETED a",
            "SEQUENCE_FLOW_TAKEN ja",
            "ELEMENT_ACTIVATING join",
            "ELEMENT_ACTIVATED join",
            "ELEMENT_COMPLETING join",
            "ELEMENT_COMPLETED join",
            "SEQUENCE_FLOW_TAKEN f9",
            "ELEMENT_ACTIVATING end",
            "ELEMENT_ACTIVATED end",
            "ELEMENT_COMPLETING end",
            "ELEMENT_COMPLETED end",
            "ELEMENT_COMPLETING parallel",
            "ELEMENT_COMPLETED parallel",
        ])
    );
    assert!(!h.active(i));
}

pub fn inclusive_gateway_forks_on_conditions_and_joins_what_was_forked<S: Store>(
    h: &mut Harness<S>,
) {
    h.deploy(INCLUSIVE);
    let m = h.mark();
    let i = h.create("inclusive", json!({"courses": ["pasta", "steak"]}));
    assert_contains(
        &h.trail_since(m),
        &[
            "ELEMENT_ACTIVATING fork",
            "ELEMENT_ACTIVATED fork",
            "ELEMENT_COMPLETING fork",
            "ELEMENT_COMPLETED fork",
            "SEQUENCE_FLOW_TAKEN pasta-flow",
            "SEQUENCE_FLOW_TAKEN steak-flow",
            "ELEMENT_ACTIVATING pasta",
        ],
    );
    // The first branch waits at the join: the other can still arrive.
    let m = h.mark();
    h.complete("pasta", json!({}));
    let trail = h.trail_since(m);
    assert_eq!(
        trail.last().map(String::as_str),
        Some("SEQUENCE_FLOW_TAKEN j-pasta")
    );
    assert_eq!(count(&trail, "ELEMENT_ACTIVATING join"), 0);
    let m = h.mark();
    h.complete("steak", json!({}));
    assert_eq!(
        h.trail_since(m),
        s(&[
            "JOB_COMPLETED",
            "ELEMENT_COMPLETING steak",
            "ELEMENT_COMPLETED steak",
            "SEQUENCE_FLOW_TAKEN j-steak",
            "ELEMENT_ACTIVATING join",
            "ELEMENT_ACTIVATED join",
            "ELEMENT_COMPLETING join",
            "ELEMENT_COMPLETED join",
            "SEQUENCE_FLOW_TAKEN f2",
            "ELEMENT_ACTIVATING end",
            "ELEMENT_ACTIVATED end",
            "ELEMENT_COMPLETING end",
            "ELEMENT_COMPLETED end",
            "ELEMENT_COMPLETING inclusive",
            "ELEMENT_COMPLETED inclusive",
        ])
    );
    assert!(!h.active(i));

    // No condition holds: the default flow, and the join passes at once.
    let m = h.mark();
    let j = h.create("inclusive", json!({"courses": []}));
    let trail = h.trail_since(m);
    assert_contains(
        &trail,
        &["ELEMENT_COMPLETED fork", "SEQUENCE_FLOW_TAKEN salad-flow"],
    );
    assert_eq!(count(&trail, "ELEMENT_ACTIVATING pasta"), 0);
    h.complete("salad", json!({}));
    assert!(!h.active(j));

    // A condition that cannot be evaluated is an incident on the fork.
    let k = h.create("inclusive", json!({}));
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].kind, IncidentKind::Condition);
    assert!(h.active(k));
}

pub fn inclusive_join_stops_waiting_for_a_branch_that_went_elsewhere<S: Store>(h: &mut Harness<S>) {
    h.deploy(INCLUSIVE);
    let i = h.create("inclusive-skip", json!({"skip": true}));
    let m = h.mark();
    h.complete("a", json!({}));
    assert_eq!(count(&h.trail_since(m), "ELEMENT_ACTIVATING s-join"), 0);
    // b leaves by the exclusive gateway to an end event: nothing can reach the join's other
    // flow any more, so it goes on with what arrived.
    let m = h.mark();
    h.complete("b", json!({}));
    assert_contains(
        &h.trail_since(m),
        &[
            "SEQUENCE_FLOW_TAKEN s-out",
            "ELEMENT_ACTIVATING s-skipped",
            "ELEMENT_ACTIVATED s-skipped",
            "ELEMENT_COMPLETING s-skipped",
            "ELEMENT_COMPLETED s-skipped",
            "ELEMENT_ACTIVATING s-join",
            "ELEMENT_ACTIVATED s-join",
            "ELEMENT_COMPLETING s-join",
            "ELEMENT_COMPLETED s-join",
            "SEQUENCE_FLOW_TAKEN s2",
        ],
    );
    assert!(!h.active(i));

    // Not skipped: the join waits for both and activates once.
    let j = h.create("inclusive-skip", json!({"skip": false}));
    h.complete("b", json!({}));
    let m = h.mark();
    h.complete("a", json!({}));
    let trail = h.trail_since(m);
    assert_eq!(count(&trail, "ELEMENT_ACTIVATING s-join"), 1);
    assert!(!h.active(j));
}

pub fn event_based_gateway_takes_the_first_event<S: Store>(h: &mut Harness<S>) {
    h.deploy(EVENT_GATEWAY);
    let i = h.create("event-gateway", json!({"orderId": "o-1"}));
    let m = h.mark();
    assert!(
        h.publish("PaymentReceived", "o-1", json!({"paid": true}), 0)
            .is_ok()
    );
    assert_eq!(
        h.trail_since(m),
        s(&[
            "MESSAGE_CORRELATED",
            "ELEMENT_COMPLETING gw",
            "ELEMENT_COMPLETED gw",
            "SEQUENCE_FLOW_TAKEN to-paid",
            "ELEMENT_ACTIVATING paid",
            "ELEMENT_ACTIVATED paid",
            "ELEMENT_COMPLETING paid",
            "ELEMENT_COMPLETED paid",
            "SEQUENCE_FLOW_TAKEN f1",
            "ELEMENT_ACTIVATING end-paid",
            "ELEMENT_ACTIVATED end-paid",
            "ELEMENT_COMPLETING end-paid",
            "ELEMENT_COMPLETED end-paid",
            "ELEMENT_COMPLETING event-gateway",
            "ELEMENT_COMPLETED event-gateway",
        ])
    );
    assert_eq!(h.process_variable(i, "paid"), Some(json!(true)));
    let m = h.mark();
    h.advance(SignedDuration::from_hours(2));
    assert!(
        h.trail_since(m).is_empty(),
        "the timer was closed with the gateway"
    );
}

pub fn event_based_gateway_timer_wins_when_no_message_comes<S: Store>(h: &mut Harness<S>) {
    h.deploy(EVENT_GATEWAY);
    let i = h.create("event-gateway", json!({"orderId": "o-2"}));
    h.advance(SignedDuration::from_mins(59));
    assert!(h.active(i));
    let m = h.mark();
    h.advance(SignedDuration::from_mins(1));
    assert_contains(
        &h.trail_since(m),
        &[
            "TIMER_TRIGGERED",
            "ELEMENT_COMPLETING gw",
            "ELEMENT_COMPLETED gw",
            "SEQUENCE_FLOW_TAKEN to-timeout",
            "ELEMENT_ACTIVATING timeout",
        ],
    );
    assert!(!h.active(i));
    let m = h.mark();
    assert!(h.publish("PaymentReceived", "o-2", json!({}), 0).is_ok());
    assert!(
        h.trail_since(m).is_empty(),
        "the subscription was closed with the gateway"
    );
}
