//! Test support: a [`Harness`] that drives the engine on any [`Store`] with in-test job workers
//! and a controllable clock, and the conformance [`suite`] every store implementation must pass
//! (run it with [`conformance_suite!`](crate::conformance_suite)).

pub mod suite;

use std::collections::HashMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use crate::engine::{
    Accepted, Action, Command, CommandResult, Deployed, Engine, Event, Incident, JobActivation,
    Options, Publication,
};
use crate::feel::{Context, Value};
use crate::model::Process;
use crate::store::Store;

/// Drives an engine over a store: one command per batch, jobs and publications collected.
pub struct Harness<S: Store> {
    pub engine: Engine,
    pub store: S,
    pub now: Timestamp,
    /// Every event of every batch so far.
    pub events: Vec<Event>,
    /// Jobs handed out and not yet taken by [`Harness::job`].
    pub jobs: Vec<JobActivation>,
    /// Messages the engine published.
    pub published: Vec<Publication>,
    models: HashMap<u64, Arc<Process>>,
}

/// JSON object → variables.
pub fn vars(json: serde_json::Value) -> Context {
    match Value::from_json(&json) {
        Value::Context(c) => c,
        Value::Null => Context::new(),
        other => panic!("variables must be a JSON object, not {other}"),
    }
}

impl<S: Store> Harness<S> {
    pub fn new(store: S) -> Harness<S> {
        Harness {
            engine: Engine::new(Options::default()),
            store,
            now: "2024-01-01T00:00:00Z".parse().expect("valid timestamp"),
            events: Vec::new(),
            jobs: Vec::new(),
            published: Vec::new(),
            models: HashMap::new(),
        }
    }

    /// Runs one command in its own batch. Signals it threw are then broadcast as the runtime
    /// does: each as a BroadcastSignal command, then acknowledged.
    pub fn run(&mut self, command: Command) -> CommandResult {
        let mut signals = Vec::new();
        let result = self.run_one(command, &mut signals);
        while !signals.is_empty() {
            for s in std::mem::take(&mut signals) {
                let broadcast = Command::BroadcastSignal {
                    name: s.name,
                    variables: s.variables,
                };
                assert_eq!(self.run_one(broadcast, &mut signals), Ok(Accepted::Done));
                let ack = Command::AckPublication { key: s.key };
                assert_eq!(self.run_one(ack, &mut signals), Ok(Accepted::Done));
            }
        }
        result
    }

    fn run_one(
        &mut self,
        command: Command,
        signals: &mut Vec<crate::engine::records::SignalBroadcast>,
    ) -> CommandResult {
        let batch = self
            .engine
            .process(&mut self.store, self.now, [command])
            .expect("engine failed");
        self.events.extend(batch.events);
        for action in batch.actions {
            match action {
                Action::Job(j) => self.jobs.push(j),
                Action::Publish(p) => self.published.push(p),
                Action::Signal(s) => signals.push(s),
            }
        }
        batch
            .results
            .into_iter()
            .next()
            .expect("one result per command")
    }

    pub fn deploy(&mut self, xml: &str) -> Vec<Deployed> {
        let deployed = match self.run(Command::Deploy {
            resource: "test.bpmn".into(),
            xml: xml.into(),
        }) {
            Ok(Accepted::Deployed(d)) => d,
            other => panic!("deployment failed: {other:?}"),
        };
        let defs = crate::parse::parse(xml).expect("deployed XML parses");
        for d in &deployed {
            if let Some(p) = defs.processes.iter().find(|p| p.id == d.process_id) {
                self.models.insert(d.key, p.clone());
            }
        }
        deployed
    }

    pub fn create(&mut self, process_id: &str, variables: serde_json::Value) -> u64 {
        match self.run(Command::CreateInstance {
            process_id: process_id.into(),
            version: None,
            variables: vars(variables),
        }) {
            Ok(Accepted::Created { instance }) => instance,
            other => panic!("create failed: {other:?}"),
        }
    }

    /// Takes the oldest pending job of a type.
    pub fn job(&mut self, job_type: &str) -> JobActivation {
        let Some(i) = self.jobs.iter().position(|j| j.job_type == job_type) else {
            let pending: Vec<&str> = self.jobs.iter().map(|j| j.job_type.as_str()).collect();
            panic!("no pending job of type {job_type}; pending: {pending:?}");
        };
        self.jobs.remove(i)
    }

    /// Completes the oldest pending job of a type; returns its activation.
    pub fn complete(&mut self, job_type: &str, variables: serde_json::Value) -> JobActivation {
        let job = self.job(job_type);
        let result = self.run(Command::CompleteJob {
            key: job.key,
            variables: vars(variables),
        });
        assert_eq!(result, Ok(Accepted::Done), "completing {job_type}");
        job
    }

    pub fn publish(
        &mut self,
        name: &str,
        key: &str,
        variables: serde_json::Value,
        ttl_ms: i64,
    ) -> CommandResult {
        self.run(Command::Publish {
            name: name.into(),
            correlation_key: key.into(),
            variables: vars(variables),
            ttl_ms,
            message_id: None,
        })
    }

    /// Moves the clock and fires whatever is due.
    pub fn advance(&mut self, by: SignedDuration) {
        self.now = self.now.checked_add(by).expect("clock in range");
        assert_eq!(self.run(Command::Tick), Ok(Accepted::Done));
    }

    /// The position in the event log, for [`Harness::trail_since`].
    pub fn mark(&self) -> usize {
        self.events.len()
    }

    /// Element lifecycle, sequence flow and job events as `INTENT element-id`, the way Zeebe's
    /// engine tests read them.
    pub fn trail(&self) -> Vec<String> {
        self.trail_since(0)
    }

    pub fn trail_since(&self, mark: usize) -> Vec<String> {
        self.events[mark..]
            .iter()
            .filter_map(|e| self.describe(e))
            .collect()
    }

    fn describe(&self, e: &Event) -> Option<String> {
        let element_id = |definition: u64, idx: crate::model::ElementIdx| {
            self.models.get(&definition).map_or_else(
                || format!("#{}", idx.0),
                |p| {
                    let el = p.element(idx);
                    // Zeebe tells the body from the inner activity by its element type.
                    if matches!(el.kind, crate::model::Kind::MultiInstance(_)) {
                        format!("{}#body", el.id)
                    } else {
                        el.id.clone()
                    }
                },
            )
        };
        let id = match e {
            Event::ElementActivating { element, .. } => {
                element_id(element.definition, element.element)
            }
            Event::Element { element, .. } => element_id(element.definition, element.element),
            Event::SequenceFlowTaken {
                definition, flow, ..
            } => self
                .models
                .get(definition)
                .map_or_else(|| format!("#{}", flow.0), |p| p.flow(*flow).id.clone()),
            Event::JobCreated(j) => element_id(j.definition, j.element),
            Event::ElementMigrated {
                definition,
                element,
                ..
            } => element_id(*definition, *element),
            Event::IncidentCreated(i) => element_id(i.definition, i.element),
            Event::SignalReceived { name, .. } => name.clone(),
            Event::JobCompleted { .. }
            | Event::TimerTriggered { .. }
            | Event::MessageCorrelated { .. }
            | Event::IncidentResolved { .. } => String::new(),
            _ => return None,
        };
        Some(if id.is_empty() {
            e.intent().to_owned()
        } else {
            format!("{} {id}", e.intent())
        })
    }

    pub fn incidents(&self) -> Vec<Incident> {
        self.store
            .read(|kv| crate::engine::state::Reader::new(kv).incidents())
            .expect("incidents readable")
    }

    /// The keys of the active instances of element `id` in process instance `instance`.
    pub fn element_instances(&self, instance: u64, id: &str) -> Vec<u64> {
        self.store
            .read(|kv| {
                let r = crate::engine::state::Reader::new(kv);
                let mut out = Vec::new();
                let mut todo = vec![instance];
                while let Some(key) = todo.pop() {
                    let Some(e) = r.element(key)? else { continue };
                    todo.extend(r.children(key)?);
                    let named = self
                        .models
                        .get(&e.definition)
                        .is_some_and(|p| p.element(e.element).id == id);
                    if named {
                        out.push(key);
                    }
                }
                Ok::<_, crate::engine::Error>(out)
            })
            .expect("state readable")
    }

    /// Whether an element instance (or process instance) is still active.
    pub fn active(&self, key: u64) -> bool {
        self.store
            .read(|kv| crate::engine::state::Reader::new(kv).element(key))
            .expect("state readable")
            .is_some()
    }

    /// The value of a variable on a scope (process instance or element instance).
    pub fn variable(&self, scope: u64, name: &str) -> Option<serde_json::Value> {
        self.store
            .read(|kv| crate::engine::state::Reader::new(kv).variable(scope, name))
            .expect("state readable")
            .map(|v| v.to_json())
    }

    /// The last value each variable was set to on the process scope, from the events.
    pub fn process_variable(&self, instance: u64, name: &str) -> Option<serde_json::Value> {
        self.events.iter().rev().find_map(|e| match e {
            Event::VariableCreated {
                scope,
                name: n,
                value,
                ..
            }
            | Event::VariableUpdated {
                scope,
                name: n,
                value,
                ..
            } if *scope == instance && n == name => Some(value.to_json()),
            _ => None,
        })
    }
}

/// Expands to one `#[test]` per conformance scenario, each on a fresh store from `$store`.
#[macro_export]
macro_rules! conformance_suite {
    ($store:expr) => {
        $crate::conformance_suite!(@tests $store;
            three_tasks_run_in_zeebe_record_order,
            task_kinds_run_with_their_zeebe_behaviour,
            exclusive_gateway_takes_first_true_condition_or_default,
            exclusive_gateway_without_match_raises_incident_until_resolved,
            parallel_gateway_forks_and_joins,
            inclusive_gateway_forks_on_conditions_and_joins_what_was_forked,
            inclusive_join_stops_waiting_for_a_branch_that_went_elsewhere,
            event_based_gateway_takes_the_first_event,
            event_based_gateway_timer_wins_when_no_message_comes,
            message_catch_receive_and_throw_events,
            messages_are_buffered_until_their_ttl_and_deduplicated_by_id,
            message_correlates_at_most_once_per_instance,
            message_start_allows_one_active_instance_per_correlation_key,
            receive_task_with_instantiate_starts_an_instance,
            timer_catch_events_wait_for_duration_and_date,
            timer_start_events_fire_by_date_and_cycle,
            timer_cycles_as_cron_fire_when_the_cron_says,
            conditional_catch_waits_until_its_condition_holds,
            conditional_boundaries_fire_when_variables_make_them_true,
            interrupting_timer_boundary_terminates_the_task,
            non_interrupting_timer_cycle_boundary_fires_repeatedly,
            message_boundaries_interrupt_or_not,
            error_boundary_catches_by_code_before_catch_all,
            uncaught_job_error_raises_incident,
            embedded_subprocess_scopes_variables_and_catches_errors,
            error_end_event_is_caught_by_enclosing_boundary,
            uncaught_error_end_event_raises_incident,
            link_throw_goes_on_at_its_catch_event,
            non_interrupting_escalation_is_caught_and_both_paths_go_on,
            interrupting_escalation_ends_the_activity_and_uncaught_goes_on,
            terminate_end_event_ends_the_instance,
            compensation_runs_handlers_of_completed_activities,
            compensation_reaches_into_completed_subprocesses,
            variables_follow_zeebe_scope_and_mapping_rules,
            failed_jobs_retry_with_backoff_then_raise_incident,
            new_deployments_make_versions_and_keep_running_instances,
            cancel_terminates_everything_inside,
            multi_instance_parallel_collects_outputs_in_item_order,
            multi_instance_error_on_one_item_ends_the_body,
            multi_instance_collection_that_is_no_list_raises_incident,
            multi_instance_sequential_runs_one_at_a_time_until_its_condition,
            multi_instance_subprocess_keeps_each_item_apart,
            event_subprocesses_interrupt_or_run_beside_the_process,
            error_event_subprocess_catches_inside_its_subprocess,
            escalation_and_conditional_event_subprocesses,
            signals_reach_every_waiting_element_and_start_processes,
            call_activity_runs_a_child_and_takes_its_variables,
            call_activity_maps_variables_and_binds_versions,
            call_activity_child_errors_and_termination,
            modification_moves_a_stuck_token_all_or_nothing,
            modification_opens_subprocesses_and_ends_emptied_scopes,
            migration_moves_an_instance_to_a_new_version_or_says_why_not,
            flowing_retail_order_runs_end_to_end,
            flowing_retail_payment_runs_end_to_end,
            rejected_commands_change_nothing,
            kv_transactions_are_atomic_and_scans_ordered,
        );
    };
    (@tests $store:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let mut h = $crate::testing::Harness::new($store);
                $crate::testing::suite::$name(&mut h);
            }
        )*
    };
}
