//! Resolving incidents: retries what failed. A job gets a retry (at least one) and is performed
//! again; an element step (activation, completion, an error throw) runs again, with whatever
//! variables were fixed in the meantime.

use super::command::Rejection;
use super::context::Ctx;
use super::event::Event;
use super::lifecycle::{self, Leave};
use super::records::ElementState;
use super::{Error, behavior, jobs};

pub(crate) fn resolve(ctx: &mut Ctx<'_>, key: u64) -> Result<Result<(), Rejection>, Error> {
    let Some(incident) = ctx.r().incident(key)? else {
        return Ok(Err(Rejection::not_found(format!("no open incident {key}"))));
    };
    ctx.emit(Event::IncidentResolved { key })?;
    if let Some(job_key) = incident.job {
        if let Some(job) = ctx.r().job(job_key)? {
            if job.retries == 0 {
                ctx.emit(Event::JobRetriesUpdated {
                    key: job_key,
                    retries: 1,
                })?;
            }
            ctx.emit(Event::JobRecurred { key: job_key })?;
            jobs::dispatch(ctx, job_key)?;
        }
        return Ok(Ok(()));
    }
    let Some(el) = ctx.r().element(incident.element_instance)? else {
        return Ok(Ok(()));
    };
    match el.state {
        ElementState::Activating => lifecycle::run_activation(ctx, el.key, None)?,
        ElementState::Completing => lifecycle::run_completion(ctx, el.key, None, Leave::All)?,
        ElementState::Activated => {
            let model = ctx.model(el.definition)?;
            behavior::of(&model.element(el.element).kind).resume(ctx, &el, &model)?;
        }
        ElementState::Terminating => {}
    }
    Ok(Ok(()))
}
