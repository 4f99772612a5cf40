//! Whether sandboxes can start right now: the engine answers and the worker
//! image is present. Checked at most every few seconds, so listing tools (MCP,
//! the agent loop) does not ask the engine on every request.

use super::driver::Driver;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an answer is reused.
const FRESH_FOR: Duration = Duration::from_secs(5);

/// The last answer and when it was found.
#[derive(Default)]
pub struct Probe {
    last: Mutex<Option<(Instant, bool)>>,
}

impl Probe {
    /// Whether `driver` answers and has `image`, reusing an answer younger than five seconds.
    pub async fn available(&self, driver: &dyn Driver, image: &str) -> bool {
        if let Some((at, up)) = *self.last.lock().unwrap_or_else(|e| e.into_inner())
            && at.elapsed() < FRESH_FOR
        {
            return up;
        }
        let up =
            driver.ping().await.is_ok() && matches!(driver.image_present(image).await, Ok(true));
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), up));
        up
    }
}
