//! The demo's BPMN models, one per stage (drawn with diagram data). Regenerate nothing: they
//! are plain files under `examples/order-fulfillment/models/`, readable in Camunda Modeler.

/// Stage track: `order-tracking` follows each order from OrderPlaced to GoodsShipped with
/// message catch events only.
pub const TRACK: &str = include_str!("../models/track.bpmn");
/// Stage act: `order-tracking` v2 publishes PaymentOverdueEvent when a payment is late.
pub const ACT: &str = include_str!("../models/act.bpmn");
/// Stage orchestrate: `order`, owned by the order service, commands the others.
pub const ORDER: &str = include_str!("../models/order.bpmn");
/// Stage orchestrate: `payment`, owned by the payment service, charges the card.
pub const PAYMENT: &str = include_str!("../models/payment.bpmn");
/// Stage change: `order` v2 fetches the goods before the payment.
pub const ORDER_V2: &str = include_str!("../models/order-v2.bpmn");
