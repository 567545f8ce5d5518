//! `aside attach`, and the session a foreground `aside run --pty` or `--stdin` is: the
//! task's output live (after its screen, when attaching), this process's input sent to it,
//! and, on a terminal, raw mode with a detach key that leaves the task running.

use std::io::{Read, Write};

use aside_client::Client;
use aside_core::Config;
use aside_protocol::rpc::{
    method, IdParams, ReadParams, ReadResult, SignalParams, StopParams, WriteParams, WriteResult,
};
use aside_protocol::{keys, ScreenFormat, TaskId, TaskRecord, TaskSignal, TermSize};
use base64::Engine as _;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::cli::AttachArgs;
use crate::connect::{self, Context};
use crate::exit;
use crate::terminal::{self, RawMode};

/// Ctrl+\\, for a config that names none it can use (never: the config is checked).
pub const DEFAULT_DETACH: u8 = 0x1c;
/// Bytes asked for per read.
const READ_BYTES: u64 = 1 << 20;
/// How long a session waits for a task that is not reading its input before it tries again.
const INPUT_RETRY: std::time::Duration = std::time::Duration::from_millis(20);
/// Bytes of this process's input sent per write (the daemon takes up to 64 KiB).
const INPUT_CHUNK: usize = 16 << 10;

/// What a session attaches to and how.
pub struct Session {
    pub id: TaskId,
    /// This process started the task in the foreground (`aside run`): detaching moves it to
    /// the background, Ctrl+C (when not on a terminal) stops it.
    pub foreground: bool,
    /// Draw the task's screen first (attaching to a running terminal task).
    pub replay: bool,
    /// The task's input is a pipe: this process's end of input closes it.
    pub pipe: bool,
    /// The byte that detaches, on a terminal.
    pub detach: u8,
}

/// How a session ended.
enum Left {
    Ended(Box<TaskRecord>),
    /// The detach key, or the task moved to the background elsewhere.
    Detached,
    /// This process's input was closed, or it was asked to go: the task runs on.
    Gone,
}

pub async fn run(ctx: &Context, a: AttachArgs) -> anyhow::Result<i32> {
    let id = connect::parse_id(&a.id)?;
    let detach = detach_byte(ctx, a.detach_key.as_deref())?;
    let client = ctx.client().await?;
    let task: TaskRecord = client.request::<method::TaskGet>(IdParams { id }).await?;
    if task.is_terminal() {
        anyhow::bail!(
            "task {id} {}; see its output with: aside logs {id}",
            task.state.describe()
        );
    }
    if task.kind.input().pty().is_none() {
        anyhow::bail!(
            "task {id} has no terminal (it was not started with --pty); follow its output \
             with: aside logs -f {id}"
        );
    }
    let s = Session {
        id,
        foreground: false,
        replay: true,
        pipe: false,
        detach,
    };
    session(client, s).await
}

/// The detach key as a byte: `--detach-key`, else the config's `detach_key`.
pub fn detach_byte(ctx: &Context, flag: Option<&str>) -> anyhow::Result<u8> {
    let Some(name) = flag else {
        // Checked when the config is read.
        let config = Config::load(&ctx.paths.config_file)?;
        return Ok(config.detach_byte().unwrap_or(DEFAULT_DETACH));
    };
    match keys::bytes(name, true).as_deref() {
        Some([b]) => Ok(*b),
        _ => anyhow::bail!(
            "--detach-key {name:?}: name one key that sends a single byte, such as C-\\ or C-]"
        ),
    }
}

/// Runs a session to its end; the exit code.
pub async fn session(client: Client, s: Session) -> anyhow::Result<i32> {
    let id = s.id;
    let left = {
        // Raw only on a terminal, and only while attached: restored before anything is said.
        let raw = match terminal::interactive() && !s.pipe {
            true => Some(RawMode::enter()?),
            false => None,
        };
        let left = attached(client, &s).await;
        if raw.is_some() {
            // What is said next starts on a line of its own.
            let _ = std::io::stdout()
                .write_all(b"\r\n")
                .and_then(|()| std::io::stdout().flush());
        }
        left
    }?;
    match left {
        Left::Ended(t) => {
            crate::render::report_end(&t, false);
            Ok(exit::for_state(&t.state))
        }
        Left::Detached if s.foreground => {
            eprintln!("aside: task {id} continues in the background; attach again with: aside attach {id}");
            Ok(exit::STILL_RUNNING)
        }
        Left::Detached | Left::Gone => {
            eprintln!("aside: detached from task {id}, which runs on; attach again with: aside attach {id}");
            Ok(0)
        }
    }
}

async fn attached(mut client: Client, s: &Session) -> anyhow::Result<Left> {
    let id = s.id;
    let raw = terminal::interactive() && !s.pipe;
    let mut out = std::io::stdout();
    let mut after = 0u64;
    if raw {
        if let Some(size) = terminal::size() {
            resize(&client, id, size).await;
        }
    }
    if s.replay {
        let r = read(&client, s, 0, Some(ScreenFormat::Ansi), None).await?;
        if let Some(screen) = r.screen {
            out.write_all(b"\x1b[H\x1b[2J")?;
            out.write_all(screen.ansi.unwrap_or(screen.text).as_bytes())?;
            out.flush()?;
            after = screen.offset;
        }
    }
    let mut input = stdin_chunks();
    let mut input_open = true;
    let mut winch = signal(SignalKind::window_change())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut tstp = signal(SignalKind::from_raw(libc::SIGTSTP))?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        let r = {
            let pending = read(&client, s, after, None, Some(60_000));
            tokio::pin!(pending);
            loop {
                tokio::select! {
                    r = &mut pending => break r,
                    chunk = input.recv(), if input_open => match chunk {
                        Some(bytes) => {
                            let (keep, detach) = match raw {
                                true => split_at_detach(&bytes, s.detach),
                                false => (&bytes[..], false),
                            };
                            if !keep.is_empty() && !pass_on(&client, id, keep, false).await? {
                                input_open = false;
                            }
                            if detach {
                                return leave(&client, s).await;
                            }
                        }
                        None => {
                            input_open = false;
                            if s.pipe {
                                pass_on(&client, id, &[], true).await?;
                            } else if !s.foreground && !raw {
                                // Attached with no input left to send: nothing more to do.
                                return Ok(Left::Gone);
                            }
                        }
                    },
                    _ = winch.recv() => {
                        if let (true, Some(size)) = (raw, terminal::size()) {
                            resize(&client, id, size).await;
                        }
                    }
                    _ = int.recv() => {
                        if !s.foreground {
                            return Ok(Left::Gone);
                        }
                        client.request::<method::TaskStop>(StopParams {
                            ids: vec![id],
                            message: Some("interrupted (Ctrl+C)".into()),
                        }).await?;
                    }
                    _ = tstp.recv() => return leave(&client, s).await,
                    _ = term.recv() => return Ok(Left::Gone),
                    _ = hup.recv() => return Ok(Left::Gone),
                }
            }
        };
        let r = match r {
            Ok(r) => r,
            Err(e) if Client::broke(&e) => {
                client = client.reconnect().await?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let data = r.chunk.decode()?;
        if !data.is_empty() {
            out.write_all(&data)?;
            out.flush()?;
        }
        after = r.next;
        if let Some(t) = r.task {
            if t.is_terminal() && r.eof {
                return Ok(Left::Ended(Box::new(t)));
            }
            if t.detached && s.foreground {
                return Ok(Left::Detached);
            }
        }
    }
}

/// The detach key: a foreground task goes to the background, an attached one is left.
async fn leave(client: &Client, s: &Session) -> anyhow::Result<Left> {
    if s.foreground {
        let _: TaskRecord = client
            .request::<method::TaskDetach>(IdParams { id: s.id })
            .await?;
    }
    Ok(Left::Detached)
}

async fn read(
    client: &Client,
    s: &Session,
    after: u64,
    screen: Option<ScreenFormat>,
    wait_ms: Option<u64>,
) -> Result<ReadResult, aside_client::ClientError> {
    client
        .request::<method::TaskRead>(ReadParams {
            wait_ms,
            foreground: s.foreground,
            screen,
            ..ReadParams::new(s.id, after, READ_BYTES)
        })
        .await
}

pub async fn send(client: &Client, id: TaskId, data: &[u8], eof: bool) -> anyhow::Result<()> {
    let _: WriteResult = client
        .request::<method::TaskWrite>(WriteParams {
            id,
            data: base64::engine::general_purpose::STANDARD.encode(data),
            eof,
        })
        .await?;
    Ok(())
}

/// Hands this process's input to the task, waiting while the task is not reading (it holds
/// at most 1 MiB unread); `false` once the task has ended, which the next read reports.
async fn pass_on(client: &Client, id: TaskId, data: &[u8], eof: bool) -> anyhow::Result<bool> {
    loop {
        let Err(e) = send(client, id, data, eof).await else {
            return Ok(true);
        };
        let refused = e
            .downcast_ref::<aside_client::ClientError>()
            .and_then(|c| c.code())
            == Some(aside_protocol::rpc::ErrorCode::InvalidState);
        if !refused {
            return Err(e);
        }
        let t: TaskRecord = client.request::<method::TaskGet>(IdParams { id }).await?;
        if t.is_terminal() {
            return Ok(false);
        }
        tokio::time::sleep(INPUT_RETRY).await;
    }
}

/// Tells the task its terminal's size; a task that ended meanwhile says so on the next read.
async fn resize(client: &Client, id: TaskId, size: TermSize) {
    let signal = TaskSignal::Winch {
        cols: size.cols,
        rows: size.rows,
    };
    let _ = client
        .request::<method::TaskSignal>(SignalParams { id, signal })
        .await;
}

/// The bytes before the detach key, and whether it was pressed.
fn split_at_detach(bytes: &[u8], key: u8) -> (&[u8], bool) {
    match bytes.iter().position(|b| *b == key) {
        Some(at) => (&bytes[..at], true),
        None => (bytes, false),
    }
}

/// This process's input, as it comes, read on a thread of its own (reads of stdin block).
fn stdin_chunks() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; INPUT_CHUNK];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::split_at_detach;

    #[test]
    fn the_detach_key_ends_what_is_sent() {
        assert_eq!(split_at_detach(b"ab\x1ccd", 0x1c), (&b"ab"[..], true));
        assert_eq!(split_at_detach(b"abc", 0x1c), (&b"abc"[..], false));
    }
}
