//! Input, signals and screens: what reaches a running task through its console.

use std::sync::Arc;

use aside_protocol::{Screen, ScreenFormat, TaskId, TaskKind, TaskRecord, TaskSignal};

use super::{record_of, Engine, EngineError, SpecError};
use crate::console::{self, Console};
use crate::output::{self, Output};

impl Engine {
    /// Writes `data` to a running task's input; with `eof`, closes a pipe after it. Returns
    /// the bytes taken.
    pub fn write(&self, id: TaskId, data: &[u8], eof: bool) -> Result<u64, EngineError> {
        let (console, _) = self.console(id)?;
        Ok(console.write(data, eof)?)
    }

    /// Sends a signal to a running shell task (WINCH: resizes its terminal).
    pub fn signal(&self, id: TaskId, signal: TaskSignal) -> Result<TaskRecord, EngineError> {
        let (console, output) = self.console(id)?;
        console.signal(signal, &output)?;
        record_of(self, id)
    }

    /// A terminal task's screen: live, or as its log left it once it ended.
    pub fn screen(&self, id: TaskId, format: ScreenFormat) -> Result<Screen, EngineError> {
        match self.console(id) {
            Ok((console, output)) => Ok(console.screen(&output, format)?),
            Err(EngineError::AlreadyEnded { .. }) => self.final_screen(id, format),
            Err(e) => Err(e),
        }
    }

    fn final_screen(&self, id: TaskId, format: ScreenFormat) -> Result<Screen, EngineError> {
        let record = record_of(self, id)?;
        let Some(size) = record.kind.input().pty() else {
            return Err(console::ConsoleError::NoTerminal(id).into());
        };
        let total = record.output_bytes;
        let from = total.saturating_sub(console::FINAL_SCREEN_BYTES);
        let want = usize::try_from(total - from).unwrap_or(usize::MAX);
        let mut log = Vec::new();
        while (log.len() as u64) < total - from {
            let chunk = output::read_log(&self.inner.logs, id, from + log.len() as u64, want)?;
            if chunk.is_empty() {
                break;
            }
            log.extend_from_slice(&chunk);
        }
        let total = from + log.len() as u64;
        Ok(console::final_screen(&log, total, size, format))
    }

    /// The console of a running task, with its output; why not, for any other.
    fn console(&self, id: TaskId) -> Result<(Arc<Console>, Arc<Output>), EngineError> {
        let st = self.lock();
        let Some(task) = st.tasks.get(&id) else {
            drop(st);
            let record = record_of(self, id)?;
            return Err(not_running(&record));
        };
        if let Some((c, o)) = task.console() {
            return Ok((c.clone(), o.clone()));
        }
        if task.is_over() {
            return Err(EngineError::AlreadyEnded { id, state: "ended" });
        }
        Err(not_running(&task.snapshot()))
    }
}

/// Why a task that is not running with a console has none.
fn not_running(record: &TaskRecord) -> EngineError {
    let id = record.id;
    if record.is_terminal() {
        EngineError::AlreadyEnded {
            id,
            state: record.state.name(),
        }
    } else if let TaskKind::Agent { .. } = record.kind {
        EngineError::Agent { id }
    } else if record.state.started_at().is_none() {
        EngineError::NotStarted { id }
    } else {
        // A running shell task without a supervisor (an engine without one).
        EngineError::BadSpec(SpecError::NoSupervisor)
    }
}
