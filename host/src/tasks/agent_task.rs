//! Agent tasks: a model turn with tools, driven by [`crate::agent`].

use super::{Outcome, Tasks};
use crate::store::TaskRow;
use tokio_util::sync::CancellationToken;

impl Tasks {
    /// Run an agent task until it ends, waits for input, or `cancel`.
    pub(super) async fn run_agent(&self, task: &TaskRow, cancel: &CancellationToken) -> Outcome {
        let _ = (task, cancel);
        Outcome::Failed {
            code: "llm_not_configured".into(),
            message: "no LLM provider is configured".into(),
            result: None,
        }
    }
}
