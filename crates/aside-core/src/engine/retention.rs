//! What the engine keeps of finished tasks, and for how long: the output of foreground tasks
//! that never reached the disk stays in memory within a budget (oldest evicted first), and
//! finished tasks are removed with their logs after the retention period.

use std::collections::VecDeque;
use std::time::Duration;

use aside_protocol::{EventKind, TaskId, TaskRecord, Timestamp};
use aside_store::Op;

use super::{Engine, EngineError};

/// Finished tasks removed per transaction by a clean-up.
const CLEAN_BATCH: usize = 1000;
/// How often the retention sweep runs.
const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// Outputs kept in memory, oldest first, with the bytes each was counted at.
#[derive(Default)]
pub(super) struct Retained {
    order: VecDeque<(TaskId, u64)>,
    bytes: u64,
}

impl Retained {
    /// Keeps `bytes` of `id`'s output; returns the tasks whose output must go to stay within
    /// `budget` (oldest first; possibly `id` itself when it alone is over).
    pub fn add(&mut self, id: TaskId, bytes: u64, budget: u64) -> Vec<TaskId> {
        self.order.push_back((id, bytes));
        self.bytes += bytes;
        let mut evicted = Vec::new();
        while self.bytes > budget {
            let Some((old, n)) = self.order.pop_front() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(n);
            evicted.push(old);
        }
        evicted
    }

    /// Stops counting `id` (its output was saved, or the task removed).
    pub fn remove(&mut self, id: TaskId) {
        if let Some(i) = self.order.iter().position(|(t, _)| *t == id) {
            if let Some((_, n)) = self.order.remove(i) {
                self.bytes = self.bytes.saturating_sub(n);
            }
        }
    }

    #[cfg(test)]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Engine {
    /// Removes finished tasks that ended at least `older_than` ago (all finished tasks when
    /// `None`) with their logs and events. Each removal leaves a `removed` event, so
    /// subscribers resuming later learn of it too.
    pub async fn clean(&self, older_than: Option<Duration>) -> Result<Vec<TaskId>, EngineError> {
        let cutoff = match older_than {
            Some(age) => Timestamp::now()
                .unix_ms()
                .saturating_sub(age.as_millis() as u64),
            None => u64::MAX,
        };
        let mut removed = Vec::new();
        loop {
            let store = &self.inner.store;
            let batch: Vec<TaskRecord> = store
                .ended_before(cutoff, CLEAN_BATCH)?
                .into_iter()
                .filter_map(|id| store.get_task(id).ok().flatten())
                .collect();
            if batch.is_empty() {
                return Ok(removed);
            }
            let committed = {
                let mut st = self.lock();
                let mut ops = Vec::with_capacity(batch.len() * 2);
                let mut events = Vec::with_capacity(batch.len());
                for record in &batch {
                    let event = st.event(record, EventKind::Removed);
                    ops.push(Op::Remove(record.id));
                    ops.push(Op::Event(event.clone()));
                    events.push(event);
                    if st.tasks.remove(&record.id).is_some() {
                        st.retained.remove(record.id);
                    }
                }
                self.persist_waiting(&mut st, ops, events)
            };
            committed.await?;
            for record in &batch {
                // A missing log is fine: a task that printed nothing never made one.
                let _ = self.inner.logs.remove(record.id);
                removed.push(record.id);
            }
        }
    }

    pub(super) fn spawn_retention(&self) {
        let Some(retention) = self.inner.config.retention else {
            return;
        };
        let weak = std::sync::Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let engine = Engine { inner };
                match engine.clean(Some(retention)).await {
                    Ok(ids) if !ids.is_empty() => {
                        tracing::info!("removed {} finished tasks past retention", ids.len())
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("retention clean-up failed: {e}"),
                }
                drop(engine);
                tokio::time::sleep(SWEEP_EVERY).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> TaskId {
        TaskId::new(n).unwrap()
    }

    #[test]
    fn the_oldest_outputs_go_first_to_stay_within_budget() {
        let mut r = Retained::default();
        assert!(r.add(id(1), 40, 100).is_empty());
        assert!(r.add(id(2), 40, 100).is_empty());
        assert_eq!(r.add(id(3), 40, 100), [id(1)]);
        assert_eq!(r.bytes(), 80);
        assert_eq!(
            r.add(id(4), 500, 100),
            [id(2), id(3), id(4)],
            "too big alone"
        );
        assert_eq!(r.bytes(), 0);
    }

    #[test]
    fn a_removed_output_is_no_longer_counted() {
        let mut r = Retained::default();
        r.add(id(1), 10, 100);
        r.add(id(2), 20, 100);
        r.remove(id(1));
        r.remove(id(1));
        assert_eq!(r.bytes(), 20);
        assert_eq!(r.add(id(3), 90, 100), [id(2)]);
    }
}
