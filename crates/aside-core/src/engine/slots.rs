//! Slot limits changed at runtime (`aside slots`): decided under the lock, kept in the
//! store before the answer, and read back by the next engine ahead of the config file.

use aside_protocol::rpc::SlotsStatus;
use aside_store::Op;

use super::{Effects, Engine, EngineError, SpecError};
use crate::config;
use crate::scheduler::SlotChanges;

/// The highest limit `aside slots` takes.
pub const MAX_SLOTS: u32 = 10_000;

impl Engine {
    /// The limits in force and their use.
    pub fn slots(&self) -> SlotsStatus {
        self.lock().sched.status(&self.inner.config)
    }

    /// Sets the global limit (no group) or a group's; `None` goes back to the config file's.
    /// Raising a limit starts queued tasks at once; lowering one stops nothing: running
    /// tasks finish and fewer start.
    pub async fn set_slots(
        &self,
        group: Option<&str>,
        limit: Option<u32>,
    ) -> Result<SlotsStatus, EngineError> {
        if let Some(g) = group {
            config::validate_group(g).map_err(SpecError::from)?;
        }
        if let Some(n) = limit {
            if n == 0 || n > MAX_SLOTS {
                return Err(EngineError::BadSlotLimit(n));
            }
        }
        let mut fx = Effects::default();
        let (committed, status) = {
            let mut st = self.lock();
            st.sched.set_limit(group, limit.map(|n| n as usize));
            let changes = st.sched.changes();
            let value = match changes == &SlotChanges::default() {
                true => None,
                false => Some(serde_json::to_string(changes).map_err(EngineError::SlotRecord)?),
            };
            let op = Op::PutSetting {
                key: SlotChanges::SETTING,
                value,
            };
            let committed = self.persist_waiting(&mut st, vec![op], Vec::new());
            self.schedule(&mut st, &mut fx);
            (committed, st.sched.status(&self.inner.config))
        };
        self.act(fx);
        committed.await?;
        Ok(status)
    }
}

/// The limits a previous engine changed, from the store; unreadable ones are left out
/// (the config file's apply) and said so.
pub(super) fn stored_changes(store: &aside_store::Store) -> SlotChanges {
    let text = match store.setting(SlotChanges::SETTING) {
        Ok(Some(text)) => text,
        Ok(None) => return SlotChanges::default(),
        Err(e) => {
            tracing::warn!("cannot read the slot limits set at runtime: {e}");
            return SlotChanges::default();
        }
    };
    serde_json::from_str(&text).unwrap_or_else(|e| {
        tracing::warn!("ignoring the slot limits set at runtime ({text:?}): {e}");
        SlotChanges::default()
    })
}
