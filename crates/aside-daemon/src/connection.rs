//! One client connection: newline-delimited JSON-RPC requests in, responses and event
//! notifications out. Requests run concurrently, so a long-poll never blocks the others.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use aside_protocol::rpc::{code, Request, RpcError, MAX_LINE_BYTES};
use aside_protocol::{CancelReason, TaskId};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use crate::handlers;
use crate::Shared;

/// What a connection's handlers know about it.
pub(crate) struct Conn {
    pub owner: Mutex<String>,
    /// Foreground tasks started here: stopped if the connection goes away undetached.
    pub foreground: Mutex<HashSet<TaskId>>,
    pub out: mpsc::Sender<Vec<u8>>,
    /// Set when the client hangs up, so event forwarders stop at once.
    pub closed: tokio::sync::watch::Sender<bool>,
    /// Running `tools.call`s by their call id, to cancel them.
    pub calls: Mutex<HashMap<String, tokio::sync::watch::Sender<Option<CancelReason>>>>,
}

impl Conn {
    pub fn owner(&self) -> String {
        self.owner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Queues a JSON-RPC notification for the client; false once the client is gone.
    pub async fn notify(&self, method: &str, params: Value) -> bool {
        let msg = json!({"jsonrpc": "2.0", "method": method, "params": params});
        self.out.send(line(&msg)).await.is_ok()
    }
}

fn line(v: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(v).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

pub(crate) async fn serve(shared: Arc<Shared>, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
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
    });
    let mut reader = BufReader::new(read);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match read_line(&mut reader, &mut buf).await {
            Ok(Line::Eof) => break,
            Ok(Line::TooLong) => {
                respond(
                    &conn,
                    Value::Null,
                    Err(err(
                        code::INVALID_REQUEST,
                        format!("request line longer than {MAX_LINE_BYTES} bytes"),
                    )),
                )
                .await;
            }
            Ok(Line::Complete) => {
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                dispatch(&shared, &conn, &buf).await;
            }
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

enum Line {
    Complete,
    TooLong,
    Eof,
}

/// Reads one line into `buf`, discarding the rest of a line longer than the limit.
async fn read_line(
    reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    buf: &mut Vec<u8>,
) -> std::io::Result<Line> {
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if buf.is_empty() && !too_long {
                Line::Eof
            } else if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if !too_long {
            if buf.len() + chunk.len() > MAX_LINE_BYTES {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(available.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

pub(crate) fn err(code: i64, message: impl Into<String>) -> RpcError {
    RpcError {
        code,
        message: message.into(),
    }
}

async fn respond(conn: &Conn, id: Value, result: Result<Value, RpcError>) {
    let msg = match result {
        Ok(v) => json!({"jsonrpc": "2.0", "id": id, "result": v}),
        Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": e}),
    };
    let _ = conn.out.send(line(&msg)).await;
}

async fn dispatch(shared: &Arc<Shared>, conn: &Arc<Conn>, bytes: &[u8]) {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            respond(
                conn,
                Value::Null,
                Err(err(code::PARSE_ERROR, format!("malformed JSON: {e}"))),
            )
            .await;
            return;
        }
    };
    let Value::Object(mut obj) = value else {
        respond(
            conn,
            Value::Null,
            Err(err(
                code::INVALID_REQUEST,
                "a request must be a JSON object",
            )),
        )
        .await;
        return;
    };
    let id = obj.remove("id");
    let reply_to = id.clone().unwrap_or(Value::Null);
    if let Some(v) = obj.get("jsonrpc") {
        if v != "2.0" {
            respond(
                conn,
                reply_to,
                Err(err(code::INVALID_REQUEST, "jsonrpc must be \"2.0\"")),
            )
            .await;
            return;
        }
    }
    let Some(Value::String(method)) = obj.remove("method") else {
        respond(
            conn,
            reply_to,
            Err(err(
                code::INVALID_REQUEST,
                "a request needs a method (a string)",
            )),
        )
        .await;
        return;
    };
    // From here on the message is a well-formed request; without an id it is a notification,
    // and JSON-RPC 2.0 forbids answering those, failed or not.
    let notification = id.is_none();
    if !Request::METHODS.contains(&method.as_str()) {
        if notification {
            tracing::debug!("notification for unknown method {method:?} ignored");
            return;
        }
        respond(
            conn,
            reply_to,
            Err(err(
                code::METHOD_NOT_FOUND,
                format!("unknown method {method:?}"),
            )),
        )
        .await;
        return;
    }
    let params = match obj.remove("params") {
        None | Some(Value::Null) => json!({}),
        Some(p) => p,
    };
    let request: Request = match serde_json::from_value(json!({"method": method, "params": params}))
    {
        Ok(r) => r,
        Err(e) => {
            if notification {
                tracing::debug!("notification {method} with invalid params ignored: {e}");
                return;
            }
            respond(
                conn,
                reply_to,
                Err(err(
                    code::INVALID_PARAMS,
                    format!("invalid params for {method}: {e}"),
                )),
            )
            .await;
            return;
        }
    };
    // hello changes the connection's owner, so it runs before any later request.
    if let Request::Hello(p) = request {
        let result = handlers::hello(conn, p);
        if id.is_some() {
            respond(conn, reply_to, result).await;
        }
        return;
    }
    let shared = shared.clone();
    let conn = conn.clone();
    tokio::spawn(async move {
        let result = handlers::handle(&shared, &conn, request).await;
        if id.is_some() {
            respond(&conn, reply_to, result).await;
        }
    });
}
