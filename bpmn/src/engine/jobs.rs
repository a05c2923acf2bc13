//! Job commands from workers: complete, fail (retry with backoff, or an incident), throw a
//! business error, update retries; and re-dispatch of jobs that became activatable again.

use super::action::Action;
use super::behavior;
use super::command::Rejection;
use super::context::Ctx;
use super::event::Event;
use super::lifecycle::{self, Leave};
use super::records::{IncidentKind, Job, JobState};
use super::{Error, errors};
use crate::feel::Context;

fn usable(ctx: &Ctx<'_>, key: u64) -> Result<Result<Job, Rejection>, Error> {
    Ok(match ctx.r().job(key)? {
        None => Err(Rejection::not_found(format!(
            "job {key} does not exist: it was completed or cancelled, or never created"
        ))),
        Some(j) if j.state == JobState::Incident => Err(Rejection::state(format!(
            "job {key} has an open incident; resolve the incident first"
        ))),
        Some(j) => Ok(j),
    })
}

pub(crate) fn complete(
    ctx: &mut Ctx<'_>,
    key: u64,
    variables: Context,
) -> Result<Result<(), Rejection>, Error> {
    let job = match usable(ctx, key)? {
        Ok(j) => j,
        Err(r) => return Ok(Err(r)),
    };
    ctx.emit(Event::JobCompleted {
        key,
        variables: variables.clone(),
    })?;
    lifecycle::complete(ctx, job.element_instance, Some(variables), Leave::All)?;
    Ok(Ok(()))
}

pub(crate) fn fail(
    ctx: &mut Ctx<'_>,
    key: u64,
    retries: u32,
    backoff_ms: u64,
    message: String,
) -> Result<Result<(), Rejection>, Error> {
    let job = match usable(ctx, key)? {
        Ok(j) => j,
        Err(r) => return Ok(Err(r)),
    };
    let retry_at = (retries > 0 && backoff_ms > 0).then(|| {
        ctx.now
            .saturating_add(i64::try_from(backoff_ms).unwrap_or(i64::MAX))
    });
    ctx.emit(Event::JobFailed {
        key,
        retries,
        retry_at,
        message: message.clone(),
    })?;
    if retries == 0 {
        let why = if message.is_empty() {
            "the job failed and has no retries left".to_owned()
        } else {
            message
        };
        ctx.incident(
            job.element_instance,
            IncidentKind::JobNoRetries,
            why,
            Some(key),
        )?;
    } else if retry_at.is_none() {
        dispatch(ctx, key)?;
    }
    Ok(Ok(()))
}

pub(crate) fn throw_error(
    ctx: &mut Ctx<'_>,
    key: u64,
    code: &str,
    message: String,
    variables: Context,
) -> Result<Result<(), Rejection>, Error> {
    let job = match usable(ctx, key)? {
        Ok(j) => j,
        Err(r) => return Ok(Err(r)),
    };
    if code.is_empty() {
        return Ok(Err(Rejection::invalid(
            "an error needs a code that error events can catch",
        )));
    }
    ctx.emit(Event::JobErrorThrown {
        key,
        code: code.to_owned(),
        message: message.clone(),
    })?;
    if !errors::throw(ctx, job.element_instance, code, Some(variables))? {
        let mut why = errors::uncaught_message(code);
        if !message.is_empty() {
            why.push_str(&format!(" Error message: {message}"));
        }
        ctx.incident(
            job.element_instance,
            IncidentKind::UnhandledError,
            why,
            Some(key),
        )?;
    }
    Ok(Ok(()))
}

pub(crate) fn update_retries(
    ctx: &mut Ctx<'_>,
    key: u64,
    retries: u32,
) -> Result<Result<(), Rejection>, Error> {
    if ctx.r().job(key)?.is_none() {
        return Ok(Err(Rejection::not_found(format!(
            "job {key} does not exist"
        ))));
    }
    ctx.emit(Event::JobRetriesUpdated { key, retries })?;
    Ok(Ok(()))
}

/// Asks the runtime to perform an activatable job (again).
pub(crate) fn dispatch(ctx: &mut Ctx<'_>, key: u64) -> Result<(), Error> {
    let Some(job) = ctx.r().job(key)? else {
        return Ok(());
    };
    let model = ctx.model(job.definition)?;
    let Some(def) = behavior::job_def(&model.element(job.element).kind) else {
        return Err(Error::Corrupt(format!(
            "job {key} belongs to an element without a job definition"
        )));
    };
    let version = ctx.version(job.definition)?;
    let activation = behavior::activation(ctx.r(), &job, &model, def, version)?;
    ctx.actions.push(Action::Job(activation));
    Ok(())
}
