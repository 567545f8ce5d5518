//! One client connection: newline-delimited JSON-RPC requests in, responses and event
//! notifications out. Requests run concurrently, so a long-poll never blocks the others;
//! `hello` runs before anything after it, since it names the connection's owner.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use aside_protocol::rpc::{
    Envelope, ErrorCode, Request, RequestLine, ResponseLine, RpcError, MAX_LINE_BYTES,
};
use aside_protocol::{CancelReason, TaskId};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Decoder, LinesCodec, LinesCodecError};

use aside_core::NoticeConsumer;

use crate::outbox::Outbox;
use crate::Shared;

/// Requests of one connection answered at once; past this its next request is not read until
/// one is answered.
pub(crate) const MAX_IN_FLIGHT: usize = 64;

/// A future to run once a request's answer is queued (a subscription's event stream).
pub(crate) type AfterReply = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a connection's handlers know about it.
pub(crate) struct Conn {
    pub owner: Mutex<String>,
    /// Foreground tasks started here: stopped if the connection goes away undetached.
    pub foreground: Mutex<HashSet<TaskId>>,
    /// Replies and events owed to the client, bounded in bytes.
    out: Outbox,
    /// Taken while a large `task.read` answer is read and queued: one at a time.
    pub large_reads: tokio::sync::Mutex<()>,
    /// Running `tools.call`s by their call id, to cancel them.
    pub calls: Mutex<HashMap<String, tokio::sync::watch::Sender<Option<CancelReason>>>>,
    /// Notices handed out here and not yet acknowledged are held for this connection, and
    /// handed out again once it is gone.
    pub notices: NoticeConsumer,
}

impl Conn {
    pub fn owner(&self) -> String {
        self.owner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until the client has read enough of what it is owed; false once it is gone.
    pub async fn room(&self) -> bool {
        self.out.room().await
    }

    /// Raised when the client hangs up or is dropped, so event forwarders stop at once.
    pub fn closed(&self) -> watch::Receiver<bool> {
        self.out.closed().subscribe()
    }

    /// Queues a JSON-RPC notification for the client, once the client has read enough of
    /// what it is owed; false once the client is gone.
    pub async fn notify<P: Serialize>(&self, method: &'static str, params: &P) -> bool {
        match line(&RequestLine::notification(method, params)) {
            Some(bytes) => self.out.notify(bytes).await,
            None => true,
        }
    }

    fn respond(&self, id: &Value, outcome: &Result<Box<RawValue>, RpcError>) {
        if let Some(bytes) = line(&ResponseLine::new(id, outcome)) {
            self.out.reply(bytes);
        }
    }
}

fn line<T: Serialize>(msg: &T) -> Option<Vec<u8>> {
    match serde_json::to_vec(msg) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            Some(bytes)
        }
        Err(e) => {
            tracing::error!("cannot encode a message: {e}");
            None
        }
    }
}

/// One request being answered: the handlers see the daemon, the connection, and where to
/// leave work that must wait for the answer to be queued.
pub(crate) struct Call {
    pub shared: Arc<Shared>,
    pub conn: Arc<Conn>,
    after_reply: Mutex<Option<AfterReply>>,
}

impl Call {
    /// Runs `f` once this call's answer is queued: whatever `f` sends comes after it.
    pub fn after_reply(&self, f: AfterReply) {
        *self.after_reply.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    fn take_after_reply(&self) -> Option<AfterReply> {
        self.after_reply
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

pub(crate) async fn serve(shared: Arc<Shared>, stream: UnixStream) {
    let (mut read, write) = stream.into_split();
    let (out, writer) = Outbox::start(write);
    let mut dropped = out.dropped();
    let conn = Arc::new(Conn {
        owner: Mutex::new("cli".into()),
        foreground: Mutex::new(HashSet::new()),
        out,
        large_reads: tokio::sync::Mutex::new(()),
        calls: Mutex::new(HashMap::new()),
        notices: shared.engine.notice_consumer(),
    });
    let mut codec = LinesCodec::new_with_max_length(MAX_LINE_BYTES);
    let mut buf = BytesMut::with_capacity(8 << 10);
    let mut eof = false;
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        // Backpressure: a client that does not read what it is owed is not read either.
        if !conn.out.room().await {
            break;
        }
        // At the end of input, what is left without a newline is a request cut off by the
        // hang-up: never executed (`decode`, not `decode_eof`, which would hand it over).
        match codec.decode(&mut buf) {
            Ok(Some(text)) => {
                if !text.trim().is_empty() {
                    let permit = tokio::select! {
                        p = in_flight.clone().acquire_owned() => p.ok(),
                        _ = dropped.wait_for(|d| *d) => None,
                    };
                    let Some(permit) = permit else { break };
                    handle_line(&shared, &conn, text, permit).await;
                }
                continue;
            }
            Ok(None) if eof => {
                if !buf.is_empty() {
                    tracing::debug!("a request cut off by the hang-up was dropped");
                }
                break;
            }
            Ok(None) => {}
            Err(LinesCodecError::MaxLineLengthExceeded) => {
                let e = RpcError::new(
                    ErrorCode::InvalidRequest,
                    format!("request line longer than {MAX_LINE_BYTES} bytes"),
                );
                conn.respond(&Value::Null, &Err(e));
                continue;
            }
            Err(LinesCodecError::Io(e)) => {
                // The line was not UTF-8; the codec has dropped it and reads on.
                let e = RpcError::new(ErrorCode::ParseError, format!("malformed JSON: {e}"));
                conn.respond(&Value::Null, &Err(e));
                continue;
            }
        }
        let got = tokio::select! {
            r = read.read_buf(&mut buf) => r,
            _ = dropped.wait_for(|d| *d) => break,
        };
        match got {
            Ok(0) => eof = true,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    // The client is gone: its undetached foreground tasks have nobody waiting for them.
    let foreground: Vec<TaskId> = conn
        .foreground
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain()
        .collect();
    for id in foreground {
        shared.engine.abandon(id);
    }
    conn.out.closed().send_replace(true);
    // What it took and did not acknowledge is handed out again now, not once its last
    // long-poll ends.
    conn.notices.release();
    let backed_up = conn.out.was_backed_up();
    drop(conn);
    // The writer ends once every pending reply is flushed or the socket refuses it.
    if backed_up {
        // Once it has, what this client made the daemon hold is given back.
        tokio::spawn(async move {
            let _ = writer.await;
            let _ = tokio::task::spawn_blocking(crate::outbox::give_back_memory).await;
        });
    }
}

/// One line: read once (the envelope, then the params into their method's type), then
/// answered, unless it is a notification (no id), which JSON-RPC forbids answering.
async fn handle_line(
    shared: &Arc<Shared>,
    conn: &Arc<Conn>,
    text: String,
    permit: OwnedSemaphorePermit,
) {
    let envelope = match Envelope::parse(&text) {
        Ok(e) => e,
        Err(e) => return conn.respond(&Value::Null, &Err(e)),
    };
    if let Some(Value::Object(_) | Value::Array(_) | Value::Bool(_)) = &envelope.id {
        // JSON-RPC ids are strings, numbers or null: this one cannot be echoed back.
        let e = RpcError::new(
            ErrorCode::InvalidRequest,
            "the id must be a string, a number or null",
        );
        return conn.respond(&Value::Null, &Err(e));
    }
    let reply_to = envelope.id.clone().unwrap_or(Value::Null);
    if envelope.jsonrpc.as_ref().is_some_and(|v| v != "2.0") {
        let e = RpcError::new(ErrorCode::InvalidRequest, "jsonrpc must be \"2.0\"");
        return conn.respond(&reply_to, &Err(e));
    }
    let Some(Value::String(method)) = &envelope.method else {
        let e = RpcError::new(
            ErrorCode::InvalidRequest,
            "a request needs a method (a string)",
        );
        return conn.respond(&reply_to, &Err(e));
    };
    let notification = envelope.id.is_none();
    let request = match Request::parse(method, envelope.params) {
        Ok(r) => r,
        Err(e) if notification => {
            return tracing::debug!("notification {method:?} ignored: {e}");
        }
        Err(e) => return conn.respond(&reply_to, &Err(e)),
    };
    // hello names the connection's owner: it is done before the next line is read.
    let inline = matches!(request, Request::Hello(_));
    let call = Call {
        shared: shared.clone(),
        conn: conn.clone(),
        after_reply: Mutex::new(None),
    };
    let answer = async move {
        let outcome = request.dispatch(&call).await;
        if !notification {
            call.conn.respond(&reply_to, &outcome);
        }
        // The request is answered (its reply queued): the next may be read.
        drop(permit);
        if let Some(next) = call.take_after_reply() {
            tokio::spawn(next);
        }
    };
    if inline {
        answer.await;
    } else {
        tokio::spawn(answer);
    }
}
