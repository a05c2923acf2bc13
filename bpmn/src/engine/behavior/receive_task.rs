//! Receive tasks wait for a message, like a message catch event, but can carry boundary events.

use super::{Behavior, Ctx, ElementInstance, Error, Leave, Process, lifecycle};
use crate::engine::messages;
use crate::engine::records::IncidentKind;
use crate::feel::Context;
use crate::model::{Kind, TaskKind};

pub(super) struct ReceiveTask;

impl Behavior for ReceiveTask {
    fn activate(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        model: &Process,
        payload: Option<Context>,
    ) -> Result<(), Error> {
        if payload.is_some() {
            // An instantiating receive task that started the instance: its message has arrived.
            lifecycle::activated(ctx, el)?;
            return lifecycle::complete(ctx, el.key, None, Leave::All);
        }
        let Kind::Task(TaskKind::Receive { message, .. }) = &model.element(el.element).kind else {
            return Err(Error::Corrupt(
                "receive behaviour on another element".to_owned(),
            ));
        };
        if let Err(msg) = messages::open_subscription(ctx, el, el.element, message, true, el.key)? {
            return ctx.incident(el.key, IncidentKind::Expression, msg, None);
        }
        lifecycle::activated(ctx, el)
    }
}
