//! Every refusal of an HTTP API: what was wrong and what to do.

use serde::{Deserialize, Serialize};

/// `{"error": "...", "detail": "..."}` with a fitting 4xx (or 5xx) status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A short, stable code (`invalid_model`, `unauthorized`, `not_found`, `no_leader`, ...).
    pub error: String,
    /// What was wrong and what to do about it.
    pub detail: String,
}
