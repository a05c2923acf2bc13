//! Deployment: a BPMN file becomes new versions of its processes (unchanged ones are kept),
//! and the start events that messages and timers trigger move to the newest version.

use std::fmt::Write;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::Error;
use super::command::{Deployed, Rejection};
use super::context::Ctx;
use super::event::Event;
use super::records::{ProcessRecord, Repeat, Timer};
use crate::feel::{NoVariables, Value};
use crate::model::{Kind, Process, StartTrigger, TaskKind};

pub(crate) fn deploy(
    ctx: &mut Ctx<'_>,
    resource: &str,
    xml: &str,
) -> Result<Result<Vec<Deployed>, Rejection>, Error> {
    let defs = match crate::parse::parse(xml) {
        Ok(d) => d,
        Err(e) => return Ok(Err(Rejection::invalid(format!("{resource}:{e}")))),
    };
    let problems = defs.problems();
    if !problems.is_empty() {
        let text: Vec<String> = problems.iter().map(|p| format!("{resource}:{p}")).collect();
        return Ok(Err(Rejection::invalid(text.join("\n"))));
    }
    // Start-event message names are evaluated now, so a bad one refuses the deployment.
    let mut start_names = Vec::new();
    for p in defs.executable_processes() {
        for start in p.triggered_starts() {
            if let Some(name) = start_message_name(ctx, p, start) {
                match name {
                    Ok(n) => start_names.push((p.id.clone(), start, n)),
                    Err(msg) => {
                        let e = p.element(start);
                        return Ok(Err(Rejection::invalid(format!(
                            "{resource}:{}:{}: element {}: {msg}",
                            e.pos.line, e.pos.col, e.id
                        ))));
                    }
                }
            }
        }
    }
    let checksum = hex(&Sha256::digest(xml.as_bytes()));
    let mut out = Vec::new();
    for p in defs.executable_processes() {
        let versions = ctx.r().versions(&p.id)?;
        if let Some(&(version, key)) = versions.last()
            && ctx
                .r()
                .process(key)?
                .is_some_and(|r| r.checksum == checksum)
        {
            out.push(Deployed {
                process_id: p.id.clone(),
                version,
                key,
                duplicate: true,
            });
            continue;
        }
        let version = versions.last().map_or(1, |(v, _)| v + 1);
        let key = ctx.new_key();
        ctx.emit(Event::ProcessDeployed(ProcessRecord {
            key,
            process_id: p.id.clone(),
            version,
            resource: resource.to_owned(),
            xml: xml.to_owned(),
            checksum: checksum.clone(),
            deployed_at: ctx.now,
        }))?;
        ctx.models.pending.insert(
            key,
            super::context::Deployed {
                process: Arc::clone(p),
                version,
            },
        );
        if let Some(&(_, previous)) = versions.last() {
            retire_starts(ctx, previous)?;
        }
        for (_, start, name) in start_names.iter().filter(|(id, _, _)| *id == p.id) {
            ctx.emit(Event::StartSubscriptionOpened {
                name: name.clone(),
                definition: key,
                element: *start,
            })?;
        }
        super::signals::open_starts(ctx, p, key)?;
        for start in p.triggered_starts() {
            if let Kind::StartEvent(StartTrigger::Timer(def)) = &p.element(start).kind {
                let value = def
                    .expr
                    .evaluate(&NoVariables, ctx.now_ts())
                    .map(|e| e.value)
                    .unwrap_or(Value::Null);
                let schedule = match def.schedule_from(&value, ctx.now_ts()) {
                    Ok(s) => s,
                    // Expressions here see no variables; a failing one was refused above only
                    // when static, so refuse now too.
                    Err(msg) => {
                        return Err(Error::Corrupt(format!(
                            "timer start event {} cannot be scheduled: {msg}",
                            p.element(start).id
                        )));
                    }
                };
                let timer_key = ctx.new_key();
                ctx.emit(Event::TimerCreated(Timer {
                    key: timer_key,
                    due: schedule.due.as_millisecond(),
                    owner: None,
                    instance: None,
                    definition: key,
                    element: start,
                    repeat: schedule.repeat.map(|(remaining, interval)| Repeat {
                        remaining,
                        months: interval.months,
                        nanos: interval.exact.as_nanos(),
                    }),
                }))?;
            }
        }
        out.push(Deployed {
            process_id: p.id.clone(),
            version,
            key,
            duplicate: false,
        });
    }
    Ok(Ok(out))
}

/// The message name of a message start event (or instantiating receive task).
fn start_message_name(
    ctx: &Ctx<'_>,
    p: &Process,
    start: crate::model::ElementIdx,
) -> Option<Result<String, String>> {
    let expr = match &p.element(start).kind {
        Kind::StartEvent(StartTrigger::Message(m)) => &m.name,
        Kind::Task(TaskKind::Receive { message, .. }) => &message.name,
        _ => return None,
    };
    Some(match expr.evaluate(&NoVariables, ctx.now_ts()) {
        Ok(e) => match e.value {
            Value::String(s) if !s.is_empty() => Ok(s),
            other => Err(format!(
                "the message name must be a non-empty string at deployment, but it was {}",
                other.type_name()
            )),
        },
        Err(e) => Err(format!(
            "the message name cannot be evaluated at deployment: {e}"
        )),
    })
}

/// Closes the message and signal start subscriptions and cancels the start timers of an older
/// version.
fn retire_starts(ctx: &mut Ctx<'_>, previous: u64) -> Result<(), Error> {
    let model = ctx.model(previous)?;
    for start in model.triggered_starts() {
        if let Some(Ok(name)) = start_message_name(ctx, &model, start) {
            ctx.emit(Event::StartSubscriptionClosed {
                name,
                definition: previous,
                element: start,
            })?;
        }
    }
    for t in ctx.r().timers_of(previous)? {
        ctx.emit(Event::TimerCanceled { key: t })?;
    }
    super::signals::close_owned(ctx, previous)
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
