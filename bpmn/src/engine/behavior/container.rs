//! The process and embedded subprocesses: open the waits of their event subprocesses, start
//! their none start event; they complete when the last path inside them ends (see
//! `lifecycle::path_ended`).

use super::{Behavior, Ctx, ElementInstance, Error, Process};
use crate::engine::context::Activation;
use crate::engine::records::IncidentKind;
use crate::engine::{event_subprocess, lifecycle};
use crate::feel::Context;

pub(super) struct Container;

impl Behavior for Container {
    fn activate(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        model: &Process,
        _: Option<Context>,
    ) -> Result<(), Error> {
        if let Err(msg) = event_subprocess::open(ctx, el, model)? {
            return ctx.incident(el.key, IncidentKind::Expression, msg, None);
        }
        lifecycle::activated(ctx, el)?;
        let Some(start) = model.none_start(el.element) else {
            return Err(Error::Corrupt(format!(
                "{} has no none start event",
                model.element(el.element).id
            )));
        };
        ctx.queue.push_back(Activation {
            definition: el.definition,
            instance: el.instance,
            scope: el.key,
            element: start,
            consumed: Vec::new(),
            joined: false,
            payload: None,
            compensating: None,
        });
        Ok(())
    }
}
