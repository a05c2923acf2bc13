//! The demo's four stages: what each deploys, how the apps work together, and which end each
//! order must reach.

use flowmesh_example_order_fulfillment::{Behaviour, models};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Stage {
    Track,
    Act,
    Orchestrate,
    Change,
}

/// Where an order must end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Expect {
    /// The end event the owning process completes at.
    pub(crate) end: &'static str,
    /// The payment was refunded by compensation on the way.
    pub(crate) compensated: bool,
    /// PaymentOverdueEvent was published on the way (stage act).
    pub(crate) overdue: bool,
}

impl Stage {
    pub(crate) const ALL: [Stage; 4] =
        [Stage::Track, Stage::Act, Stage::Orchestrate, Stage::Change];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Stage::Track => "track",
            Stage::Act => "act",
            Stage::Orchestrate => "orchestrate",
            Stage::Change => "change",
        }
    }

    /// Two sentences for the user.
    pub(crate) fn about(self) -> &'static str {
        match self {
            Stage::Track => {
                "The services choreograph themselves through events; the sidecars only observe. The model order-tracking (message catch events only) follows every order from OrderPlaced to GoodsShipped."
            }
            Stage::Act => {
                "order-tracking v2 puts a 2 s timer on the payment: when a payment is late, the order sidecar publishes PaymentOverdueEvent. Every 5th order pays slowly."
            }
            Stage::Orchestrate => {
                "The order sidecar runs the order process: it commands payment, inventory and shipping and waits for their replies; goods not fetched within 2 s cancel the order and refund the payment (compensation). The payment sidecar runs payment: expired cards wait for an update, technical failures retry."
            }
            Stage::Change => {
                "order v2 fetches the goods before the payment. It is rolled out 50/50 by business key, then 0/100: orders in flight finish on the version they started."
            }
        }
    }

    /// The process whose instances are the orders, run by the order sidecar.
    pub(crate) fn process(self) -> &'static str {
        match self {
            Stage::Track | Stage::Act => "order-tracking",
            Stage::Orchestrate | Stage::Change => "order",
        }
    }

    pub(crate) fn mode(self) -> &'static str {
        match self {
            Stage::Track | Stage::Act => "choreography",
            Stage::Orchestrate | Stage::Change => "orchestration",
        }
    }

    /// The models this stage needs, with their owners, in deployment order (the run deploys
    /// each file once).
    pub(crate) fn models(self) -> Vec<(&'static str, &'static str, &'static str)> {
        match self {
            Stage::Track => vec![("track.bpmn", models::TRACK, "order")],
            Stage::Act => vec![("act.bpmn", models::ACT, "order")],
            Stage::Orchestrate => vec![
                ("payment.bpmn", models::PAYMENT, "payment"),
                ("order.bpmn", models::ORDER, "order"),
            ],
            Stage::Change => vec![
                ("payment.bpmn", models::PAYMENT, "payment"),
                ("order.bpmn", models::ORDER, "order"),
                ("order-v2.bpmn", models::ORDER_V2, "order"),
            ],
        }
    }

    /// Where order number `n` ends when it ran on `version` (the version that fetches the
    /// goods first is the one without a refund).
    pub(crate) fn expect(self, n: u64, v2: bool) -> Expect {
        let b = Behaviour::demo();
        let order = format!("order-{n}");
        match self {
            Stage::Track => Expect {
                end: "order-delivered",
                compensated: false,
                overdue: false,
            },
            Stage::Act => Expect {
                end: "order-delivered",
                compensated: false,
                overdue: b.slow_payment(&order),
            },
            Stage::Orchestrate | Stage::Change => {
                let late = b.slow_inventory(&order);
                Expect {
                    end: if late {
                        "order-cancelled"
                    } else {
                        "order-done"
                    },
                    compensated: late && !v2,
                    overdue: false,
                }
            }
        }
    }
}
