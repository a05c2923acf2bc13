//! Job-based elements: service, send, business-rule and user tasks, script tasks with a job
//! type, and message throw events with a job type. Each creates a job for a worker and completes
//! with the job's result.

use super::{Behavior, Ctx, ElementInstance, Error, Process, lifecycle};
use crate::engine::action::{Action, JobActivation};
use crate::engine::event::Event;
use crate::engine::records::{IncidentKind, Job, JobState};
use crate::engine::state::Reader;
use crate::engine::variables;
use crate::feel::{Context, Value};
use crate::model::{EndResult, JobDef, Kind, MessageThrow, Script, TaskKind, ThrowResult};
use rust_decimal::prelude::ToPrimitive;

pub(super) struct JobTask;

impl Behavior for JobTask {
    fn activate(
        &self,
        ctx: &mut Ctx<'_>,
        el: &ElementInstance,
        model: &Process,
        _: Option<Context>,
    ) -> Result<(), Error> {
        let Some(def) = job_def(&model.element(el.element).kind) else {
            return Err(Error::Corrupt(format!(
                "{} has no job definition",
                model.element(el.element).id
            )));
        };
        create_job(ctx, el, model, def)
    }
}

/// The job definition of a job-based element, if it is one.
pub(crate) fn job_def(kind: &Kind) -> Option<&JobDef> {
    match kind {
        Kind::Task(TaskKind::Job(d) | TaskKind::User(d) | TaskKind::Script(Script::Job(d))) => {
            Some(d)
        }
        Kind::EndEvent(EndResult::Message(MessageThrow::Job(d)))
        | Kind::IntermediateThrow(ThrowResult::Message(MessageThrow::Job(d))) => Some(d),
        _ => None,
    }
}

/// Evaluates the job type and retries, emits ACTIVATED, creates the job and asks the runtime to
/// perform it.
pub(crate) fn create_job(
    ctx: &mut Ctx<'_>,
    el: &ElementInstance,
    model: &Process,
    def: &JobDef,
) -> Result<(), Error> {
    let job_type = match variables::eval_string(ctx, &def.job_type, el.key, "job type", false)? {
        Ok(t) if !t.is_empty() => t,
        Ok(_) => {
            return ctx.incident(
                el.key,
                IncidentKind::Expression,
                "the job type is empty".to_owned(),
                None,
            );
        }
        Err(msg) => return ctx.incident(el.key, IncidentKind::Expression, msg, None),
    };
    let retries = match variables::eval(ctx, &def.retries, el.key, None)? {
        Ok(Value::Number(n)) if n >= rust_decimal::Decimal::ZERO => {
            n.trunc().to_u32().unwrap_or(u32::MAX)
        }
        Ok(other) => {
            let msg = format!(
                "expected the job retries to be a non-negative number, but it was {}",
                other.type_name()
            );
            return ctx.incident(el.key, IncidentKind::Expression, msg, None);
        }
        Err(msg) => return ctx.incident(el.key, IncidentKind::Expression, msg, None),
    };
    let retries = ctx
        .options
        .job_retries
        .get(&job_type)
        .copied()
        .unwrap_or(retries);
    lifecycle::activated(ctx, el)?;
    let key = ctx.new_key();
    let job = Job {
        key,
        job_type,
        retries,
        element_instance: el.key,
        instance: el.instance,
        definition: el.definition,
        element: el.element,
        state: JobState::Activatable,
        error_message: None,
        created_at: ctx.now,
    };
    let version = ctx.version(job.definition)?;
    let activation = activation(ctx.r(), &job, model, def, version)?;
    ctx.emit(Event::JobCreated(job))?;
    ctx.actions.push(Action::Job(activation));
    Ok(())
}

/// What a worker gets for a job: the variables the element sees and the job's headers.
pub(crate) fn activation(
    r: Reader<'_>,
    job: &Job,
    model: &Process,
    def: &JobDef,
    version: u32,
) -> Result<JobActivation, Error> {
    Ok(JobActivation {
        key: job.key,
        job_type: job.job_type.clone(),
        retries: job.retries,
        instance: job.instance,
        definition: job.definition,
        process_id: model.id.clone(),
        version,
        element_id: model.element(job.element).id.clone(),
        element_instance: job.element_instance,
        variables: variables::visible(r, job.element_instance)?,
        headers: def.headers.clone(),
    })
}
