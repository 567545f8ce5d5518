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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Decoder, LinesCodec, LinesCodecError};

use aside_core::NoticeConsumer;

use crate::Shared;

/// A future to run once a request's answer is queued (a subscription's event stream).
pub(crate) type AfterReply = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a connection's handlers know about it.
pub(crate) struct Conn {
    pub owner: Mutex<String>,
    /// Foreground tasks started here: stopped if the connection goes away undetached.
    pub foreground: Mutex<HashSet<TaskId>>,
    out: mpsc::Sender<Vec<u8>>,
    /// Set when the client hangs up, so event forwarders stop at once.
    pub closed: tokio::sync::watch::Sender<bool>,
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

    /// Queues a JSON-RPC notification for the client; false once the client is gone.
    pub async fn notify<P: Serialize>(&self, method: &'static str, params: &P) -> bool {
        match line(&RequestLine::notification(method, params)) {
            Some(bytes) => self.out.send(bytes).await.is_ok(),
            None => true,
        }
    }

    async fn respond(&self, id: &Value, outcome: &Result<Box<RawValue>, RpcError>) {
        if let Some(bytes) = line(&ResponseLine::new(id, outcome)) {
            let _ = self.out.send(bytes).await;
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
    let (mut read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
    let writer = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if write.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let conn = Arc::new(Conn {
        owner: Mutex::new("cli".into()),
        foreground: Mutex::new(HashSet::new()),
        out: tx,
        closed: tokio::sync::watch::channel(false).0,
        calls: Mutex::new(HashMap::new()),
        notices: shared.engine.notice_consumer(),
    });
    let mut codec = LinesCodec::new_with_max_length(MAX_LINE_BYTES);
    let mut buf = BytesMut::with_capacity(8 << 10);
    let mut eof = false;
    loop {
        // At the end of input, what is left without a newline is a request cut off by the
        // hang-up: never executed (`decode`, not `decode_eof`, which would hand it over).
        match codec.decode(&mut buf) {
            Ok(Some(text)) => {
                if !text.trim().is_empty() {
                    handle_line(&shared, &conn, text).await;
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
                conn.respond(&Value::Null, &Err(e)).await;
                continue;
            }
            Err(LinesCodecError::Io(e)) => {
                // The line was not UTF-8; the codec has dropped it and reads on.
                let e = RpcError::new(ErrorCode::ParseError, format!("malformed JSON: {e}"));
                conn.respond(&Value::Null, &Err(e)).await;
                continue;
            }
        }
        match read.read_buf(&mut buf).await {
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
    conn.closed.send_replace(true);
    drop(conn);
    // The writer ends once every pending reply is flushed or the socket refuses it.
    drop(writer);
}

/// One line: read once (the envelope, then the params into their method's type), then
/// answered, unless it is a notification (no id), which JSON-RPC forbids answering.
async fn handle_line(shared: &Arc<Shared>, conn: &Arc<Conn>, text: String) {
    let envelope = match Envelope::parse(&text) {
        Ok(e) => e,
        Err(e) => return conn.respond(&Value::Null, &Err(e)).await,
    };
    if let Some(Value::Object(_) | Value::Array(_) | Value::Bool(_)) = &envelope.id {
        // JSON-RPC ids are strings, numbers or null: this one cannot be echoed back.
        let e = RpcError::new(
            ErrorCode::InvalidRequest,
            "the id must be a string, a number or null",
        );
        return conn.respond(&Value::Null, &Err(e)).await;
    }
    let reply_to = envelope.id.clone().unwrap_or(Value::Null);
    if envelope.jsonrpc.as_ref().is_some_and(|v| v != "2.0") {
        let e = RpcError::new(ErrorCode::InvalidRequest, "jsonrpc must be \"2.0\"");
        return conn.respond(&reply_to, &Err(e)).await;
    }
    let Some(Value::String(method)) = &envelope.method else {
        let e = RpcError::new(
            ErrorCode::InvalidRequest,
            "a request needs a method (a string)",
        );
        return conn.respond(&reply_to, &Err(e)).await;
    };
    let notification = envelope.id.is_none();
    let request = match Request::parse(method, envelope.params) {
        Ok(r) => r,
        Err(e) if notification => {
            return tracing::debug!("notification {method:?} ignored: {e}");
        }
        Err(e) => return conn.respond(&reply_to, &Err(e)).await,
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
            call.conn.respond(&reply_to, &outcome).await;
        }
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
