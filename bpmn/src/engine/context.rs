//! The processing context of one batch: state access, the model cache, the key generator, the
//! queue of follow-up work, and the events and actions produced.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use jiff::Timestamp;

use super::action::Action;
use super::apply::apply;
use super::event::Event;
use super::records::IncidentKind;
use super::state::{Reader, Writer};
use super::{Error, Options};
use crate::feel::Context;
use crate::model::{ElementIdx, FlowIdx, Process};

/// Parsed models by definition key, loaded from state on first use. Models deployed by a batch
/// wait in `pending` until the batch commits: a rolled-back deployment must leave no trace.
#[derive(Default)]
pub(crate) struct Models {
    pub(crate) cache: HashMap<u64, Deployed>,
    pub(crate) pending: HashMap<u64, Deployed>,
}

/// A parsed model and the version it was deployed as.
#[derive(Clone)]
pub(crate) struct Deployed {
    pub(crate) process: Arc<Process>,
    pub(crate) version: u32,
}

impl Models {
    pub(crate) fn get(&mut self, r: Reader<'_>, definition: u64) -> Result<Arc<Process>, Error> {
        Ok(self.deployed(r, definition)?.process)
    }

    pub(crate) fn version(&mut self, r: Reader<'_>, definition: u64) -> Result<u32, Error> {
        Ok(self.deployed(r, definition)?.version)
    }

    fn deployed(&mut self, r: Reader<'_>, definition: u64) -> Result<Deployed, Error> {
        if let Some(d) = self
            .pending
            .get(&definition)
            .or_else(|| self.cache.get(&definition))
        {
            return Ok(d.clone());
        }
        let record = r
            .process(definition)?
            .ok_or_else(|| Error::Corrupt(format!("process definition {definition} is missing")))?;
        let defs = crate::parse::parse(&record.xml).map_err(|e| {
            Error::Corrupt(format!(
                "deployed process {} no longer parses: {e}",
                record.process_id
            ))
        })?;
        let process = defs
            .processes
            .iter()
            .find(|p| p.id == record.process_id)
            .cloned()
            .ok_or_else(|| {
                Error::Corrupt(format!(
                    "deployed resource lacks process {}",
                    record.process_id
                ))
            })?;
        // Found in state but not staged by this batch: it is committed, so it may be cached.
        let deployed = Deployed {
            process,
            version: record.version,
        };
        self.cache.insert(definition, deployed.clone());
        Ok(deployed)
    }
}

/// A token on its way to an element.
#[derive(Clone, Debug)]
pub(crate) struct Activation {
    pub(crate) definition: u64,
    pub(crate) instance: u64,
    pub(crate) scope: u64,
    pub(crate) element: ElementIdx,
    pub(crate) consumed: Vec<FlowIdx>,
    pub(crate) joined: bool,
    /// Variables the element completes with (a message or error that triggered it).
    pub(crate) payload: Option<Context>,
    pub(crate) compensating: Option<u64>,
}

pub(crate) struct Ctx<'a> {
    pub(crate) w: Writer<'a>,
    pub(crate) models: &'a mut Models,
    pub(crate) now: i64,
    pub(crate) next_key: u64,
    pub(crate) record: bool,
    pub(crate) events: Vec<Event>,
    pub(crate) actions: Vec<Action>,
    pub(crate) queue: VecDeque<Activation>,
    /// Process instances whose variables changed since their conditional events were last
    /// checked.
    pub(crate) changed: std::collections::BTreeSet<u64>,
    pub(crate) options: &'a Options,
}

impl<'a> Ctx<'a> {
    pub(crate) fn r(&self) -> Reader<'_> {
        self.w.reader()
    }

    /// Applies an event to state and records it.
    pub(crate) fn emit(&mut self, event: Event) -> Result<(), Error> {
        apply(&mut self.w, &event, &mut self.next_key)?;
        if let Event::VariableCreated { instance, .. } | Event::VariableUpdated { instance, .. } =
            &event
        {
            self.changed.insert(*instance);
        }
        if self.record {
            self.events.push(event);
        }
        Ok(())
    }

    pub(crate) fn new_key(&mut self) -> u64 {
        let k = self.next_key;
        self.next_key += 1;
        k
    }

    pub(crate) fn model(&mut self, definition: u64) -> Result<Arc<Process>, Error> {
        let r = self.w.reader();
        self.models.get(r, definition)
    }

    pub(crate) fn version(&mut self, definition: u64) -> Result<u32, Error> {
        let r = self.w.reader();
        self.models.version(r, definition)
    }

    pub(crate) fn now_ts(&self) -> Timestamp {
        Timestamp::from_millisecond(self.now).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// Raises an incident on an element instance (and its job); processing of that element
    /// stops until the incident is resolved.
    pub(crate) fn incident(
        &mut self,
        element_instance: u64,
        kind: IncidentKind,
        message: String,
        job: Option<u64>,
    ) -> Result<(), Error> {
        let e = self.r().element_required(element_instance)?;
        let key = self.new_key();
        self.emit(Event::IncidentCreated(super::records::Incident {
            key,
            kind,
            message,
            element_instance,
            instance: e.instance,
            definition: e.definition,
            element: e.element,
            job,
            created_at: self.now,
        }))
    }
}
