//! The connection to the daemon, renewed when the daemon restarts: the next daemon adopts
//! the running tasks, and this MCP session goes on with it.

use std::sync::{Arc, Mutex};

use aside_client::{Client, ClientError};
use aside_protocol::rpc::{method, Method, SubscribeParams};

pub(crate) struct Daemon {
    current: Mutex<Arc<Client>>,
    /// One reconnection at a time: callers that saw the same break share it.
    renewing: tokio::sync::Mutex<()>,
    /// The seq of the last event seen, to subscribe again from it.
    last_event: std::sync::atomic::AtomicU64,
}

impl Daemon {
    pub fn new(client: Client) -> Self {
        Self {
            current: Mutex::new(Arc::new(client)),
            renewing: tokio::sync::Mutex::new(()),
            last_event: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn client(&self) -> Arc<Client> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Calls `M`; when the connection broke, connects to the next daemon and calls it
    /// again. Only for methods that may be repeated.
    pub async fn request<M: Method>(&self, params: M::Params) -> Result<M::Result, ClientError>
    where
        M::Params: Clone,
    {
        let client = self.client();
        match client.request::<M>(params.clone()).await {
            Err(e) if Client::broke(&e) => self.renew(&client).await?.request::<M>(params).await,
            r => r,
        }
    }

    /// Connects again unless another caller did since `broken` broke; subscribes to events
    /// again from the last one seen.
    pub async fn renew(&self, broken: &Arc<Client>) -> Result<Arc<Client>, ClientError> {
        let _one = self.renewing.lock().await;
        let now = self.client();
        if !Arc::ptr_eq(&now, broken) {
            return Ok(now);
        }
        let fresh = broken.reconnect().await?;
        let after = self.last_event.load(std::sync::atomic::Ordering::Relaxed);
        fresh
            .request::<method::EventsSubscribe>(SubscribeParams {
                after: (after > 0).then_some(after),
            })
            .await?;
        let fresh = Arc::new(fresh);
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = fresh.clone();
        Ok(fresh)
    }

    /// The event seen last, to subscribe again after it.
    pub fn saw_event(&self, seq: u64) {
        self.last_event
            .fetch_max(seq, std::sync::atomic::Ordering::Relaxed);
    }
}
