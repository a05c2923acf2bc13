//! The flowing-retail models, end to end.

// Test code: a panic is how a scenario fails.
#![allow(clippy::unwrap_used)]

use super::*;

pub fn flowing_retail_order_runs_end_to_end<S: Store>(h: &mut Harness<S>) {
    h.deploy(RETAIL_ORDER);
    let i = h.create(
        "retail-order",
        json!({"order": {"orderId": "o-4711", "totalSum": 42.5}, "traceId": "tr-1", "CorrelationId_RetrievePayment": "c-1"}),
    );
    h.complete("save-order", json!({}));
    let pay = h.complete("retrieve-payment", json!({}));
    let v = |name: &str| pay.variables.get(name).map(|v| v.to_json());
    assert_eq!(
        (v("amount"), v("refId"), v("traceId")),
        (
            Some(json!(42.5)),
            Some(json!("o-4711")),
            Some(json!("tr-1"))
        )
    );
    assert!(
        h.publish(
            "PaymentReceivedEvent",
            "c-1",
            json!({"paymentId": "p-1"}),
            0
        )
        .is_ok()
    );
    h.complete("fetch-goods", json!({"pickId": "pick-1"}));
    let ship = h.complete("ship-goods", json!({"shipmentId": "s-1"}));
    assert_eq!(
        ship.variables.get("pickId").map(|v| v.to_json()),
        Some(json!("pick-1"))
    );
    h.complete("order-completed", json!({}));
    assert!(!h.active(i));
}

pub fn flowing_retail_payment_runs_end_to_end<S: Store>(h: &mut Harness<S>) {
    h.deploy(RETAIL_PAYMENT);
    // Credit covers it.
    assert!(
        h.publish(
            "RetrievePaymentCommand",
            "",
            json!({"refId": "r-1", "amount": 30}),
            0
        )
        .is_ok()
    );
    h.complete("deduct-credit", json!({"remaining": 0}));
    let event = h.complete("emit-event", json!({}));
    assert_eq!(
        event.headers,
        vec![("eventName".to_owned(), "CustomerCreditUsed".to_owned())]
    );
    h.complete("payment-received", json!({}));
    // The card fails once, the customer updates it, the charge succeeds.
    assert!(
        h.publish(
            "RetrievePaymentCommand",
            "",
            json!({"refId": "r-2", "amount": 50}),
            0
        )
        .is_ok()
    );
    h.complete("deduct-credit", json!({"remaining": 20}));
    h.complete("emit-event", json!({}));
    let charge = h.job("charge-credit-card");
    let instance = charge.instance;
    assert_eq!(
        h.run(Command::ThrowError {
            key: charge.key,
            code: "Error_PaymentError".into(),
            message: "expired".into(),
            variables: vars(json!({}))
        }),
        Ok(Accepted::Done)
    );
    h.complete("ask-customer", json!({}));
    assert!(
        h.publish("CreditCardUpdated", "r-2", json!({"card": "new"}), 0)
            .is_ok()
    );
    h.complete("charge-credit-card", json!({}));
    let charged = h.complete("emit-event", json!({}));
    assert_eq!(charged.headers[0].1, "CreditCardCharged");
    h.complete("payment-received", json!({}));
    assert!(!h.active(instance));
    // The customer never updates the card: after seven days the payment fails.
    assert!(
        h.publish(
            "RetrievePaymentCommand",
            "",
            json!({"refId": "r-3", "amount": 50}),
            0
        )
        .is_ok()
    );
    h.complete("deduct-credit", json!({"remaining": 50}));
    h.complete("emit-event", json!({}));
    let charge = h.job("charge-credit-card");
    assert_eq!(
        h.run(Command::ThrowError {
            key: charge.key,
            code: "Error_PaymentError".into(),
            message: String::new(),
            variables: vars(json!({}))
        }),
        Ok(Accepted::Done)
    );
    h.complete("ask-customer", json!({}));
    let m = h.mark();
    h.advance(SignedDuration::from_hours(7 * 24));
    assert_contains(
        &h.trail_since(m),
        &[
            "TIMER_TRIGGERED",
            "ELEMENT_TERMINATING wait-card-update",
            "ELEMENT_TERMINATED wait-card-update",
            "ELEMENT_ACTIVATING seven-days",
        ],
    );
    assert!(!h.active(charge.instance));
}
