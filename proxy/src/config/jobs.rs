//! `[jobs]` and `[[subscriptions]]`: how the sidecar performs each job type of the processes
//! it runs, and which event topics it delivers to its app.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::duration;

/// How one job type is performed.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// `"METHOD /path"`: the app is called with the job and its variables.
    #[serde(default, deserialize_with = "http_target")]
    pub http: Option<HttpTarget>,
    /// The job publishes a CloudEvent on a topic of the event bus and completes.
    #[serde(default)]
    pub publish: Option<PublishSpec>,
    /// How long one attempt may take before it counts as failed.
    #[serde(default = "thirty_seconds", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Attempts before an incident; default: what the model's task definition says.
    #[serde(default)]
    pub retries: Option<u32>,
    /// Wait before the first retry; it doubles with each further one, up to a minute.
    #[serde(default = "one_second", deserialize_with = "duration")]
    pub backoff: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTarget {
    pub method: String,
    pub path: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishSpec {
    pub topic: String,
    /// The CloudEvents `type` of the published event.
    #[serde(rename = "type")]
    pub event_type: String,
}

/// Events of one topic delivered to the app.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    pub topic: String,
    /// Where the app takes the events (POST, one CloudEvent per request).
    pub path: String,
    /// Deliveries tried before an event becomes a dead letter.
    #[serde(default = "ten")]
    pub attempts: u32,
    /// Wait before the first redelivery; it doubles with each further one, up to a minute.
    #[serde(default = "one_second", deserialize_with = "duration")]
    pub backoff: Duration,
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}

fn ten() -> u32 {
    10
}

fn http_target<'de, D: Deserializer<'de>>(d: D) -> Result<Option<HttpTarget>, D::Error> {
    let text = String::deserialize(d)?;
    let wrong = || {
        serde::de::Error::custom(format!(
            "http = \"{text}\": write the method and the app's path, like \"POST /jobs/retrieve-payment\""
        ))
    };
    let (method, path) = text.trim().split_once(' ').ok_or_else(wrong)?;
    let path = path.trim();
    if method.is_empty()
        || !method.chars().all(|c| c.is_ascii_uppercase())
        || !path.starts_with('/')
        || path.contains(char::is_whitespace)
    {
        return Err(wrong());
    }
    Ok(Some(HttpTarget {
        method: method.to_owned(),
        path: path.to_owned(),
    }))
}

/// Checks what serde cannot: one way per job type, usable names and paths.
pub(super) fn check(
    jobs: &BTreeMap<String, JobSpec>,
    subscriptions: &[Subscription],
) -> Result<(), String> {
    for (job_type, spec) in jobs {
        match (&spec.http, &spec.publish) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "jobs.\"{job_type}\": give either http or publish, not both"
                ));
            }
            (None, None) => {
                return Err(format!(
                    "jobs.\"{job_type}\": say how to perform it: http = \"POST /path\" or publish = {{ topic = \"...\", type = \"...\" }}"
                ));
            }
            _ => {}
        }
        if spec.timeout.is_zero() {
            return Err(format!("jobs.\"{job_type}\".timeout must be more than 0"));
        }
        if let Some(p) = &spec.publish
            && (p.topic.is_empty() || p.event_type.is_empty())
        {
            return Err(format!(
                "jobs.\"{job_type}\".publish needs a topic and a type"
            ));
        }
    }
    for (i, s) in subscriptions.iter().enumerate() {
        if s.topic.is_empty() || !s.topic.chars().all(super::name_char) {
            return Err(format!(
                "subscriptions[{i}].topic = \"{}\": use letters, digits, '-', '_' and '.'",
                s.topic
            ));
        }
        if !s.path.starts_with('/') {
            return Err(format!(
                "subscriptions[{i}].path = \"{}\" must start with '/'",
                s.path
            ));
        }
        if s.attempts == 0 {
            return Err(format!("subscriptions[{i}].attempts must be at least 1"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::time::Duration;

    const BASE: &str =
        "service = \"payment\"\ndata_dir = \"/tmp/x\"\n[app]\naddress = \"127.0.0.1:8082\"\n";

    #[test]
    fn the_contract_example_parses() {
        let c = Config::parse(&format!(
            r#"{BASE}
[jobs]
"retrieve-payment" = {{ http = "POST /jobs/retrieve-payment", timeout = "5s", retries = 3 }}
"ship-goods" = {{ publish = {{ topic = "flowing-retail", type = "ShipGoodsCommand" }} }}

[[subscriptions]]
topic = "flowing-retail"
path = "/events"
"#
        ))
        .unwrap();
        let pay = &c.jobs["retrieve-payment"];
        let http = pay.http.as_ref().unwrap();
        assert_eq!(
            (http.method.as_str(), http.path.as_str()),
            ("POST", "/jobs/retrieve-payment")
        );
        assert_eq!(pay.timeout, Duration::from_secs(5));
        assert_eq!(pay.retries, Some(3));
        let ship = c.jobs["ship-goods"].publish.as_ref().unwrap();
        assert_eq!(ship.event_type, "ShipGoodsCommand");
        assert_eq!(c.jobs["ship-goods"].timeout, Duration::from_secs(30));
        assert_eq!(c.subscriptions[0].path, "/events");
        assert_eq!(c.subscriptions[0].attempts, 10);
    }

    #[test]
    fn refusals_say_what_to_write() {
        let cases = [
            (
                "[jobs]\nx = { http = \"/jobs/x\" }\n",
                "write the method and the app's path",
            ),
            (
                "[jobs]\nx = { http = \"post /x\" }\n",
                "write the method and the app's path",
            ),
            (
                "[jobs]\nx = { timeout = \"5s\" }\n",
                "say how to perform it",
            ),
            (
                "[jobs]\nx = { http = \"POST /x\", publish = { topic = \"t\", type = \"T\" } }\n",
                "either http or publish",
            ),
            (
                "[jobs]\nx = { http = \"POST /x\", timeout = \"0s\" }\n",
                "more than 0",
            ),
            (
                "[jobs]\nx = { http = \"POST /x\", tries = 3 }\n",
                "unknown field `tries`",
            ),
            (
                "[[subscriptions]]\ntopic = \"t\"\npath = \"events\"\n",
                "must start with '/'",
            ),
            (
                "[[subscriptions]]\ntopic = \"a b\"\npath = \"/e\"\n",
                "use letters",
            ),
            (
                "[[subscriptions]]\ntopic = \"t\"\npath = \"/e\"\nattempts = 0\n",
                "at least 1",
            ),
        ];
        for (extra, want) in cases {
            let err = Config::parse(&format!("{BASE}{extra}")).unwrap_err();
            assert!(err.contains(want), "{extra}: {err}");
        }
    }
}
