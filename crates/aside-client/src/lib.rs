//! Client of the aside daemon. Connects to the socket of a state directory, starting the
//! daemon first when none answers, and calls its JSON-RPC methods. Calls may overlap: a
//! reader task routes each response to its caller by id and pushes events to a channel.
//! Each call is typed by its method: `client.request::<method::TaskGet>(IdParams { id })`.

mod launch;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aside_protocol::rpc::{
    method, ErrorCode, EventMessage, HelloParams, HelloResult, Incoming, Method, RequestLine,
    RpcError, EVENT_NOTIFICATION,
};
use aside_protocol::{Event, PROTOCOL_VERSION};
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the aside daemon at {socket}: {reason}")]
    Connect { socket: String, reason: String },
    #[error("the aside daemon did not start: {0}")]
    DaemonStart(String),
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("the connection to the daemon broke: {0}")]
    Io(#[from] std::io::Error),
    #[error("the daemon sent something unexpected: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The JSON-RPC error code, for errors the daemon returned.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Rpc(e) => Some(e.code),
            _ => None,
        }
    }
}

/// How to start a daemon when none is running: a program and its arguments. The daemon is
/// detached from the process that starts it: not its descendant, in a session of its own,
/// in `/`, with none of its descriptors but stdin on /dev/null and stdout and stderr on `log`.
#[derive(Debug, Clone)]
pub struct Launcher {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Variables set for the daemon over the starter's environment. It runs in `/`: a
    /// variable the starter reads as a path relative to its own directory must be given
    /// here made absolute.
    pub env: Vec<(OsString, OsString)>,
    /// Where the daemon's stdout and stderr go.
    pub log: PathBuf,
    /// Where the daemon that serves writes its pid (once it holds the lock): tells a daemon
    /// that lost the race to start to another client's from one that failed.
    pub pid_file: PathBuf,
}

type Reply = Result<Box<RawValue>, RpcError>;
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Reply>>>>;

/// The result of a call to `M`, once its answer comes.
async fn answer<M: Method>(rx: oneshot::Receiver<Reply>) -> Result<M::Result, ClientError> {
    let raw = rx.await.map_err(|_| {
        ClientError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the daemon closed the connection",
        ))
    })??;
    serde_json::from_str(raw.get()).map_err(|e| ClientError::Protocol(format!("{}: {e}", M::NAME)))
}

/// What a client says first: the protocol it speaks, and whom it acts for.
fn hello_params(owner: &Option<String>) -> HelloParams {
    HelloParams {
        protocol_version: PROTOCOL_VERSION.into(),
        owner: owner.clone(),
    }
}

/// How long a client whose daemon dies as it connects tries to reach the next one.
const DYING_WAIT: Duration = Duration::from_secs(5);

/// How long a client whose daemon went away tries to reach the next one.
pub const RECONNECT_WAIT: Duration = Duration::from_secs(30);

pub struct Client {
    /// How this client connected, to connect again.
    socket: PathBuf,
    launcher: Option<Launcher>,
    owner: Option<String>,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Pending,
    next_id: AtomicU64,
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<Event>>,
    pub daemon: HelloResult,
}

impl Client {
    /// Connects to the daemon at `socket`, starting it with `launcher` when it is not running.
    pub async fn connect(
        socket: &Path,
        launcher: Option<&Launcher>,
        owner: Option<String>,
    ) -> Result<Self, ClientError> {
        let deadline = Instant::now() + DYING_WAIT;
        loop {
            let mut client = Self::open(socket, launcher).await?;
            match client.hello(owner.clone()).await {
                Ok(()) => return Ok(client),
                // A daemon dying as this client connected: its socket took the connection
                // (a killed daemon's does until its last thread has exited) and closed it
                // unanswered. The next daemon is reached, started where this client may.
                Err(e) if Self::broke(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// [`Client::connect`], with a first call `M` sent right behind `hello`, not after its
    /// answer: one round trip less. The daemon answers `hello` before it reads the next
    /// line, so the call is made as this client's owner. `M`'s own result comes second.
    pub async fn connect_with<M: Method>(
        socket: &Path,
        launcher: Option<&Launcher>,
        owner: Option<String>,
        params: M::Params,
    ) -> Result<(Self, Result<M::Result, ClientError>), ClientError> {
        let mut client = Self::open(socket, launcher).await?;
        let hello = client.send::<method::Hello>(hello_params(&owner)).await?;
        let first = client.send::<M>(params).await;
        client.daemon = answer::<method::Hello>(hello).await?;
        client.owner = owner;
        let first = match first {
            Ok(rx) => answer::<M>(rx).await,
            Err(e) => Err(e),
        };
        Ok((client, first))
    }

    /// A client on a new connection to the daemon at `socket` (started with `launcher` when
    /// none runs), not yet greeted.
    async fn open(socket: &Path, launcher: Option<&Launcher>) -> Result<Self, ClientError> {
        let stream = Self::reach(socket, launcher).await?;
        let mut client = Self::from_stream(stream).await;
        client.socket = socket.to_path_buf();
        client.launcher = launcher.cloned();
        Ok(client)
    }

    /// A connection to the daemon at `socket`, started with `launcher` when none runs.
    async fn reach(socket: &Path, launcher: Option<&Launcher>) -> Result<UnixStream, ClientError> {
        match UnixStream::connect(socket).await {
            Ok(s) => Ok(s),
            Err(e) => match launcher {
                Some(l) if absent(&e) => launch::start_daemon(socket, l).await,
                _ => Err(ClientError::Connect {
                    socket: socket.display().to_string(),
                    reason: if absent(&e) {
                        "no daemon is running".into()
                    } else {
                        e.to_string()
                    },
                }),
            },
        }
    }

    /// Connects again as this client did, after its connection broke (the daemon restarted,
    /// or died: then a new one is started, which adopts the running tasks), trying for up to
    /// [`RECONNECT_WAIT`].
    pub async fn reconnect(&self) -> Result<Self, ClientError> {
        let deadline = Instant::now() + RECONNECT_WAIT;
        let mut pause = Duration::from_millis(20);
        loop {
            // A daemon stopped on purpose is not started again by a follower.
            let stopped = self
                .socket
                .with_file_name(aside_protocol::STOPPED_FILE)
                .exists();
            let launcher = self.launcher.as_ref().filter(|_| !stopped);
            match Self::connect(&self.socket, launcher, self.owner.clone()).await {
                Ok(c) => return Ok(c),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
            }
        }
    }

    /// Whether `e` says the connection broke (the daemon went away), as opposed to an answer
    /// that is an error.
    pub fn broke(e: &ClientError) -> bool {
        matches!(e, ClientError::Io(_))
    }

    async fn from_stream(stream: UnixStream) -> Self {
        let (read, write) = stream.into_split();
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        tokio::spawn(read_loop(BufReader::new(read), pending.clone(), event_tx));
        Self {
            socket: PathBuf::new(),
            launcher: None,
            owner: None,
            writer: tokio::sync::Mutex::new(write),
            pending,
            next_id: AtomicU64::new(1),
            events: tokio::sync::Mutex::new(event_rx),
            daemon: HelloResult {
                protocol_version: String::new(),
                daemon_version: String::new(),
                pid: 0,
            },
        }
    }

    async fn hello(&mut self, owner: Option<String>) -> Result<(), ClientError> {
        self.daemon = self.request::<method::Hello>(hello_params(&owner)).await?;
        self.owner = owner;
        Ok(())
    }

    /// Calls method `M` and waits for its result.
    pub async fn request<M: Method>(&self, params: M::Params) -> Result<M::Result, ClientError> {
        let rx = self.send::<M>(params).await?;
        answer::<M>(rx).await
    }

    /// Sends a call to method `M`: where its answer will come.
    async fn send<M: Method>(
        &self,
        params: M::Params,
    ) -> Result<oneshot::Receiver<Reply>, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        let mut line = serde_json::to_vec(&RequestLine::request(id, M::NAME, &params))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push(b'\n');
        self.writer.lock().await.write_all(&line).await?;
        Ok(rx)
    }

    /// The next event pushed to this connection (after `events.subscribe`); `None` once the
    /// connection is closed.
    pub async fn next_event(&self) -> Option<Event> {
        self.events.lock().await.recv().await
    }
}

fn absent(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
    )
}

async fn read_loop(
    mut reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    pending: Pending,
    events: mpsc::UnboundedSender<Event>,
) {
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let Ok(msg) = serde_json::from_str::<Incoming>(&line) else {
            continue;
        };
        if let Some(method) = &msg.method {
            if method == EVENT_NOTIFICATION {
                let event = msg
                    .params
                    .and_then(|p| serde_json::from_str::<EventMessage>(p.get()).ok());
                if let Some(m) = event {
                    let _ = events.send(m.event);
                }
            }
            continue;
        }
        let Some(id) = msg.id.as_ref().and_then(serde_json::Value::as_u64) else {
            continue;
        };
        let reply = match (msg.error, msg.result) {
            (Some(e), _) => Err(e),
            (None, Some(r)) => Ok(r),
            (None, None) => RawValue::from_string("null".into())
                .map_err(|e| RpcError::new(ErrorCode::Internal, format!("malformed answer: {e}"))),
        };
        if let Some(tx) = pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)
        {
            let _ = tx.send(reply);
        }
    }
    // Fail every call still waiting.
    pending.lock().unwrap_or_else(|p| p.into_inner()).clear();
}
