//! Event appliers: the only code that changes engine state. Live processing applies each event
//! the moment it is emitted; replaying a log of events on empty state applies the same code, so
//! recovery cannot drift from processing.

use super::Error;
use super::event::{Event, Lifecycle};
use super::records::{ElementState, JobState};
use super::state::Writer;

/// Applies one event. `next_key` is the key generator, kept ahead of every key an event names.
pub(crate) fn apply(w: &mut Writer<'_>, event: &Event, next_key: &mut u64) -> Result<(), Error> {
    let mut see = |k: u64| {
        if k >= *next_key {
            *next_key = k + 1;
        }
    };
    match event {
        Event::ProcessDeployed(p) => {
            see(p.key);
            w.put_process(p)?;
        }
        Event::ElementActivating {
            element,
            consumed,
            joined,
        } => {
            see(element.key);
            w.insert_element(element)?;
            if let Some(scope) = element.scope {
                let mut parent = w.reader().element_required(scope)?;
                parent.active_children += 1;
                parent.active_flows = parent.active_flows.saturating_sub(consumed.len() as u32);
                w.put_element(parent)?;
                if *joined {
                    for f in consumed {
                        let n = w.reader().taken(scope, *f)?;
                        w.set_taken(scope, *f, n.saturating_sub(1))?;
                    }
                }
            }
            if let Some(thrower) = element.compensating {
                let mut t = w.reader().element_required(thrower)?;
                t.waiting += 1;
                w.put_element(t)?;
            }
            if let (None, Some(key)) = (element.scope, &element.start_key) {
                let process_id = process_id(w, element.definition)?;
                w.put_start_key(&process_id, key, element.key)?;
            }
        }
        Event::Element {
            intent, element: r, ..
        } => match intent {
            Lifecycle::Activated => set_state(w, r.key, ElementState::Activated)?,
            Lifecycle::Completing => set_state(w, r.key, ElementState::Completing)?,
            Lifecycle::Terminating => set_state(w, r.key, ElementState::Terminating)?,
            Lifecycle::Completed | Lifecycle::Terminated => {
                let e = w.reader().element_required(r.key)?;
                w.remove_element(&e)?;
                if e.has_variables {
                    w.remove_variables(e.key)?;
                }
                if e.has_joins {
                    w.clear_taken(e.key)?;
                }
                let completed = *intent == Lifecycle::Completed;
                let mut adopted_any = false;
                // Compensation handlers of a completed container stay invocable from its parent;
                // those of a terminated one are gone.
                let compensations = if e.has_compensations {
                    w.reader().compensations(e.key)?
                } else {
                    Vec::new()
                };
                for c in compensations {
                    w.remove_compensation(c.scope, c.key)?;
                    if let (true, Some(parent)) = (completed, e.scope) {
                        let mut adopted = c.clone();
                        adopted.scope = parent;
                        w.put_compensation(&adopted)?;
                        adopted_any = true;
                    }
                }
                if let Some(scope) = e.scope
                    && let Some(mut parent) = w.reader().element(scope)?
                {
                    parent.active_children = parent.active_children.saturating_sub(1);
                    parent.has_compensations |= adopted_any;
                    w.put_element(parent)?;
                }
                if let Some(thrower) = e.compensating
                    && let Some(mut t) = w.reader().element(thrower)?
                {
                    t.waiting = t.waiting.saturating_sub(1);
                    w.put_element(t)?;
                }
                if let (None, Some(key)) = (e.scope, &e.start_key) {
                    let process_id = process_id(w, e.definition)?;
                    w.remove_start_key(&process_id, key)?;
                }
            }
        },
        Event::SequenceFlowTaken {
            scope, flow, join, ..
        } => {
            let mut parent = w.reader().element_required(*scope)?;
            parent.active_flows += 1;
            parent.has_joins |= *join;
            w.put_element(parent)?;
            if *join {
                let n = w.reader().taken(*scope, *flow)?;
                w.set_taken(*scope, *flow, n + 1)?;
            }
        }
        Event::VariableCreated {
            scope, name, value, ..
        } => {
            w.put_variable(*scope, name, value)?;
            let mut e = w.reader().element_required(*scope)?;
            if !e.has_variables {
                e.has_variables = true;
                w.put_element(e)?;
            }
        }
        Event::VariableUpdated {
            scope, name, value, ..
        } => w.put_variable(*scope, name, value)?,
        Event::JobCreated(job) => {
            see(job.key);
            w.put_job(job)?;
            let mut e = w.reader().element_required(job.element_instance)?;
            e.job = Some(job.key);
            w.put_element(e)?;
        }
        Event::JobCompleted { key, .. } | Event::JobCanceled { key } => {
            if let Some(job) = w.reader().job(*key)? {
                if let JobState::Backoff { retry_at } = job.state {
                    w.remove_job_backoff(job.key, retry_at)?;
                }
                w.remove_job(job.key)?;
                if let Some(mut e) = w.reader().element(job.element_instance)? {
                    e.job = None;
                    w.put_element(e)?;
                }
            }
        }
        Event::JobFailed {
            key,
            retries,
            retry_at,
            message,
        } => {
            let mut job = required_job(w, *key)?;
            job.retries = *retries;
            job.error_message = Some(message.clone());
            job.state = match retry_at {
                Some(at) => {
                    w.add_job_backoff(job.key, *at)?;
                    JobState::Backoff { retry_at: *at }
                }
                None if *retries == 0 => JobState::Incident,
                None => JobState::Activatable,
            };
            w.put_job(&job)?;
        }
        Event::JobRecurred { key } => {
            let mut job = required_job(w, *key)?;
            if let JobState::Backoff { retry_at } = job.state {
                w.remove_job_backoff(job.key, retry_at)?;
            }
            job.state = JobState::Activatable;
            w.put_job(&job)?;
        }
        Event::JobErrorThrown { key, message, .. } => {
            let mut job = required_job(w, *key)?;
            job.error_message = Some(message.clone());
            job.state = JobState::Incident;
            w.put_job(&job)?;
        }
        Event::JobRetriesUpdated { key, retries } => {
            let mut job = required_job(w, *key)?;
            job.retries = *retries;
            w.put_job(&job)?;
        }
        Event::IncidentCreated(i) => {
            see(i.key);
            w.put_incident(i)?;
            if let Some(mut e) = w.reader().element(i.element_instance)? {
                e.incident = Some(i.key);
                w.put_element(e)?;
            }
        }
        Event::IncidentResolved { key } => {
            if let Some(i) = w.reader().incident(*key)? {
                w.remove_incident(i.key)?;
                if let Some(mut e) = w.reader().element(i.element_instance)?
                    && e.incident == Some(i.key)
                {
                    e.incident = None;
                    w.put_element(e)?;
                }
            }
        }
        Event::MessagePublished(m) => {
            see(m.key);
            // A message with no time to live is never buffered.
            if m.deadline > m.published_at {
                w.put_message(m)?;
            }
        }
        Event::MessageExpired { key } => {
            if let Some(m) = w.reader().message(*key)? {
                w.remove_message(&m)?;
            }
        }
        Event::MessageCorrelated {
            message,
            instance,
            buffered,
        } => {
            if *buffered {
                w.mark_correlated(*message, *instance)?;
            }
        }
        Event::SubscriptionOpened(s) => w.put_subscription(s)?,
        Event::SubscriptionClosed { owner, element } => {
            if let Some(s) = w.reader().subscription(*owner, *element)? {
                w.remove_subscription(&s)?;
            }
        }
        Event::StartSubscriptionOpened {
            name,
            definition,
            element,
        } => {
            w.put_start_subscription(name, *definition, *element)?;
        }
        Event::StartSubscriptionClosed {
            name,
            definition,
            element,
        } => {
            w.remove_start_subscription(name, *definition, *element)?;
        }
        Event::TimerCreated(t) => {
            see(t.key);
            w.put_timer(t)?;
        }
        Event::ElementMigrated {
            key,
            definition,
            element,
            ..
        } => {
            let mut e = w.reader().element_required(*key)?;
            e.definition = *definition;
            e.element = *element;
            w.put_element(e)?;
        }
        Event::TimerTriggered { key } | Event::TimerCanceled { key } => {
            if let Some(t) = w.reader().timer(*key)? {
                w.remove_timer(&t)?;
            }
        }
        Event::CompensationSubscribed(c) => {
            see(c.key);
            w.put_compensation(c)?;
            let mut scope = w.reader().element_required(c.scope)?;
            if !scope.has_compensations {
                scope.has_compensations = true;
                w.put_element(scope)?;
            }
        }
        Event::CompensationTriggered { scope, key } => w.remove_compensation(*scope, *key)?,
        Event::PublishRequested(p) => {
            see(p.key);
            w.put_publication(p)?;
        }
        Event::PublishAcknowledged { key } => w.remove_publication(*key)?,
        Event::SignalSubscriptionOpened(s) => w.put_signal_subscription(s)?,
        Event::SignalSubscriptionClosed {
            owner,
            element,
            name,
        } => w.remove_signal_subscription(*owner, *element, name)?,
        Event::SignalReceived { .. } => {}
        Event::SignalBroadcastRequested(b) => {
            see(b.key);
            w.put_signal_broadcast(b)?;
        }
        Event::SignalBroadcastAcknowledged { key } => w.remove_signal_broadcast(*key)?,
        Event::ProcessCalled(link) => w.put_call(link)?,
        Event::CallEnded(link) => w.remove_call(link)?,
        Event::ScopeInterrupted { scope } => {
            let mut e = w.reader().element_required(*scope)?;
            if e.has_joins {
                w.clear_taken(e.key)?;
                e.has_joins = false;
            }
            e.active_flows = 0;
            w.put_element(e)?;
        }
        Event::LoopCounted { body, counts } => {
            w.put_loop_counts(*body, counts)?;
            let mut e = w.reader().element_required(*body)?;
            if !e.has_joins {
                e.has_joins = true;
                w.put_element(e)?;
            }
        }
    }
    Ok(())
}

fn set_state(w: &mut Writer<'_>, key: u64, state: ElementState) -> Result<(), Error> {
    let mut e = w.reader().element_required(key)?;
    e.state = state;
    w.put_element(e)
}

fn required_job(w: &Writer<'_>, key: u64) -> Result<super::records::Job, Error> {
    w.reader()
        .job(key)?
        .ok_or_else(|| Error::Corrupt(format!("job {key} is missing")))
}

fn process_id(w: &Writer<'_>, definition: u64) -> Result<String, Error> {
    w.reader()
        .process(definition)?
        .map(|p| p.process_id)
        .ok_or_else(|| Error::Corrupt(format!("process definition {definition} is missing")))
}
