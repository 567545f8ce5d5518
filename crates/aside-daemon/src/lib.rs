//! The aside daemon: one engine per state directory, served as JSON-RPC 2.0 over a Unix
//! socket (newline-delimited). The directory is 0700, the socket 0600, and a peer with
//! another uid is turned away. An exclusive lock on `daemon.lock` makes sure only one daemon
//! serves a directory, however many clients try to start one at the same moment.

mod connection;
mod context;
mod handlers;
mod handles;
mod outbox;
mod tools;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use aside_core::{Config, ConsoleError, Engine, EngineError, Paths};
use aside_protocol::rpc::{ErrorCode, RpcError};
use nix::fcntl::{Flock, FlockArg};
use tokio::net::UnixListener;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("another daemon already serves {0}")]
    AlreadyRunning(String),
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Engine(#[from] aside_core::EngineError),
}

/// An engine error as the JSON-RPC error a client gets: the code by kind, the message as it is.
pub(crate) fn engine_err(e: EngineError) -> RpcError {
    let code = match &e {
        EngineError::UnknownTask(_) => ErrorCode::UnknownTask,
        EngineError::AlreadyEnded { .. } => ErrorCode::InvalidState,
        EngineError::BadSpec(_) | EngineError::TooManyTasks { .. } => ErrorCode::BadSpec,
        EngineError::NotRetained { .. } => ErrorCode::NotRetained,
        EngineError::Store(_) | EngineError::Output(_) => ErrorCode::Storage,
        EngineError::ShuttingDown => ErrorCode::ShuttingDown,
        EngineError::Setup(_) | EngineError::Logs(_) | EngineError::SlotRecord(_) => {
            ErrorCode::Internal
        }
        EngineError::Console(ConsoleError::TooLarge { .. } | ConsoleError::BadSize { .. })
        | EngineError::Pattern(_)
        | EngineError::BadSlotLimit(_) => ErrorCode::InvalidParams,
        EngineError::Console(_)
        | EngineError::NotStarted { .. }
        | EngineError::Agent { .. }
        | EngineError::CannotPause { .. } => ErrorCode::InvalidState,
    };
    RpcError::new(code, e.to_string())
}

/// What every connection's handlers share.
pub(crate) struct Shared {
    pub engine: Engine,
    pub paths: Paths,
    pub shutdown: watch::Sender<Option<Shutdown>>,
}

/// The state directory's lock, held by the daemon that serves it. Returned by [`serve`] for
/// the caller to drop only once the runtime is gone: until then the runtime's tasks hold
/// connections to supervisors, and a supervisor turns a next daemon away while its last
/// daemon's connection is open. A next daemon that took the lock sooner would find running
/// tasks' supervisors refusing it, and record those tasks as lost.
#[must_use = "dropped only after the runtime that served"]
pub struct Served {
    _lock: Flock<std::fs::File>,
}

/// Serves until asked to shut down (a `daemon.shutdown` request, SIGTERM or SIGINT); then stops
/// running tasks (or leaves them to their supervisors) and returns the lock.
pub async fn serve(paths: Paths, config: Config) -> Result<Served, DaemonError> {
    let setup = |what: &str, e: &dyn std::fmt::Display| DaemonError::Setup(format!("{what}: {e}"));
    std::fs::create_dir_all(&paths.home)
        .map_err(|e| setup(&paths.home.display().to_string(), &e))?;
    std::fs::set_permissions(&paths.home, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| setup(&paths.home.display().to_string(), &e))?;
    let socket = paths
        .checked_socket()
        .map_err(|e| DaemonError::Setup(e.to_string()))?;
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(paths.lock_file())
        .map_err(|e| setup(&paths.lock_file().display().to_string(), &e))?;
    let mut lock = match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err(_) => {
            return Err(DaemonError::AlreadyRunning(
                paths.home.display().to_string(),
            ))
        }
    };
    let _ = lock.set_len(0);
    let _ = writeln!(&mut *lock, "{}", std::process::id());

    prepare_process();
    let stopped_file = socket.with_file_name(aside_protocol::STOPPED_FILE);
    let _ = std::fs::remove_file(&stopped_file);

    // The engine first: a daemon that cannot open its state never takes a connection, so
    // the client that started it reads why from its log instead of a broken connection.
    let agents = aside_agent::AgentRuntime::new(config.clone())
        .map_err(|e| DaemonError::Setup(e.to_string()))?;
    let mut builder = Engine::builder(paths.home.clone(), config).agents(Arc::new(agents));
    match aside_core::default_supervisor() {
        Some(shim) => builder = builder.supervisor(shim),
        None => tracing::warn!(
            "aside-shim is not beside this binary: running tasks end with the daemon"
        ),
    }
    let engine = builder.open()?;

    let (listener, ours) = match listen(&socket) {
        Ok(bound) => bound,
        Err(e) => {
            // The tasks it recovered go as at any shutdown.
            engine.shutdown().await;
            return Err(setup(&socket.display().to_string(), &e));
        }
    };
    let (shutdown_tx, mut shutdown_rx) = watch::channel(None);
    let shared = Arc::new(Shared {
        engine: engine.clone(),
        paths: paths.clone(),
        shutdown: shutdown_tx,
    });
    tracing::info!(pid = std::process::id(), socket = %socket.display(), "daemon ready");

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| setup("SIGTERM handler", &e))?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| setup("SIGINT handler", &e))?;
    let my_uid = nix::unistd::getuid().as_raw();
    let mut check = tokio::time::interval(WATCH_EVERY);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    match stream.peer_cred() {
                        Ok(cred) if cred.uid() == my_uid => {
                            tokio::spawn(connection::serve(shared.clone(), stream));
                        }
                        Ok(cred) => tracing::warn!(uid = cred.uid(), "refused a connection from another user"),
                        Err(e) => tracing::warn!("refused a connection: {e}"),
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = check.tick() => {
                if !ours.still_there(&socket).await {
                    tracing::warn!(
                        "{} was removed or replaced (the state directory deleted?): shutting down",
                        socket.display()
                    );
                    break;
                }
            }
            _ = shutdown_rx.changed() => break,
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }
    tracing::info!("shutting down");
    drop(listener);
    // Only our own: a socket put there by a later daemon is that daemon's.
    if ours.still_there(&socket).await {
        let _ = std::fs::remove_file(&socket);
    }
    match *shutdown_rx.borrow() {
        Some(Shutdown::KeepTasks) => engine.release().await,
        Some(Shutdown::StopTasks) => {
            // Stopped on purpose: followers wait for a daemon rather than start one.
            let _ = std::fs::write(&stopped_file, b"");
            engine.shutdown().await
        }
        None => engine.shutdown().await,
    }
    // Give answers already queued (the reply to `daemon.shutdown` among them) a moment to
    // reach their clients before the runtime goes away with the writers.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    Ok(Served { _lock: lock })
}

/// How the daemon was asked to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Running tasks are stopped (cancelled, reason shutdown).
    StopTasks,
    /// Running tasks run on under their supervisors, for the next daemon to adopt.
    KeepTasks,
}

/// Binds the socket, private to this user. Holding the lock, any socket file left behind
/// is stale.
fn listen(socket: &std::path::Path) -> std::io::Result<(UnixListener, SocketFile)> {
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok((listener, SocketFile::of(socket)?))
}

/// How often the daemon checks that its socket is still its own.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The socket file this daemon bound, told apart from any later one at the same path.
struct SocketFile {
    dev: u64,
    ino: u64,
}

impl SocketFile {
    fn of(path: &std::path::Path) -> std::io::Result<Self> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(path)?;
        Ok(Self {
            dev: m.dev(),
            ino: m.ino(),
        })
    }

    /// False once the path is gone or names another file: the state directory was deleted
    /// or replaced, and no client can reach this daemon any more.
    async fn still_there(&self, path: &std::path::Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        tokio::fs::symlink_metadata(path)
            .await
            .is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino)
    }
}

/// Process-wide settings a daemon needs.
fn prepare_process() {
    // One pipe and one log per running task: lift the soft limit on open files to the hard one.
    if let Ok((_, hard)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    {
        let _ =
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    }
    // A log write past a file-size limit must fail with EFBIG (and fail that task), not kill
    // the daemon with SIGXFSZ. A handler, unlike SIG_IGN, is reset in the tasks' processes
    // when they exec, so they keep the default behaviour.
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(libc_sigxfsz())) {
        Ok(mut s) => {
            tokio::spawn(async move { while s.recv().await.is_some() {} });
        }
        Err(e) => tracing::warn!("could not handle SIGXFSZ: {e}"),
    }
}

fn libc_sigxfsz() -> i32 {
    nix::sys::signal::Signal::SIGXFSZ as i32
}
