//! A scripted model server: real HTTP on loopback speaking the OpenAI Chat Completions wire
//! format with SSE streaming. Each request is answered by a function of the request, so
//! parents and children that talk to it at once each get their own script.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// One answer of the server.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A streamed text answer (a final answer: no tool calls).
    Text(String),
    /// Streamed tool calls: (name, arguments as written).
    Tools(Vec<(String, String)>),
    /// An HTTP error with a body, and an optional Retry-After in seconds.
    Status(u16, String, Option<u64>),
    /// A stream that stops half-way: no finish reason, no [DONE].
    CutOff(String),
    /// A stream whose only chunk has no choices.
    EmptyChoices,
    /// Text, after waiting this long before the first byte.
    Slow(Duration, String),
    /// Headers, then nothing for this long (a stalled stream), then the connection closes.
    Hang(Duration),
}

impl Reply {
    pub fn text(s: &str) -> Self {
        Reply::Text(s.to_string())
    }
    pub fn tool(name: &str, args: Value) -> Self {
        Reply::Tools(vec![(name.to_string(), args.to_string())])
    }
}

/// A switch a script can block on until the test opens it, so a reply waits on the test,
/// not on the clock.
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<AtomicBool>);

impl Gate {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn open(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Blocks until the gate opens (at most `limit`); true if it did.
    pub fn wait(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while !self.0.load(Ordering::SeqCst) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

/// A request the server received, with when it arrived.
#[derive(Debug, Clone)]
pub struct Seen {
    pub body: Value,
    pub at: Instant,
}

type Script = dyn Fn(&Value) -> Reply + Send + Sync;

pub struct ModelServer {
    pub base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl ModelServer {
    pub fn start(script: impl Fn(&Value) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        {
            let seen = seen.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let seen = seen.clone();
                    let script = script.clone();
                    std::thread::spawn(move || {
                        let _ = serve(conn, &seen, &*script);
                    });
                }
            });
        }
        Self {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            seen,
            stop,
        }
    }

    /// The config.toml lines that point aside at this server.
    /// A model that runs `command` with `bash` once, then answers `answer`.
    pub fn bash_then_answer(command: String, answer: &'static str) -> Self {
        Self::start(move |body| {
            let answered = body["messages"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["role"] == "tool"));
            if answered {
                Reply::text(answer)
            } else {
                Reply::tool("bash", serde_json::json!({ "command": command }))
            }
        })
    }

    pub fn config(&self) -> String {
        format!(
            "[agent]\nbase_url = \"{}\"\nmodel = \"scripted\"\nretries = 2\n",
            self.base_url
        )
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(
            self.base_url
                .trim_start_matches("http://")
                .trim_end_matches("/v1"),
        );
    }
}

fn serve(conn: TcpStream, seen: &Mutex<Vec<Seen>>, script: &Script) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Ok(mut s) = seen.lock() {
        s.push(Seen {
            body: body.clone(),
            at: Instant::now(),
        });
    }
    let reply = script(&body);
    let mut out = conn;
    let sse_head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
    let chunk = |delta: Value, finish: Option<&str>| {
        format!(
            "data: {}\n\n",
            json!({"id": "c", "object": "chat.completion.chunk", "model": "scripted",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    match reply {
        Reply::Slow(wait, text) => {
            std::thread::sleep(wait);
            out.write_all(sse_head.as_bytes())?;
            stream_text(&mut out, &text, &chunk)?;
        }
        Reply::Text(text) => {
            out.write_all(sse_head.as_bytes())?;
            stream_text(&mut out, &text, &chunk)?;
        }
        Reply::Tools(calls) => {
            out.write_all(sse_head.as_bytes())?;
            for (i, (name, args)) in calls.iter().enumerate() {
                // Name first, the arguments split over two chunks, as real servers do.
                let mid = args
                    .char_indices()
                    .nth(args.chars().count() / 2)
                    .map_or(0, |(i, _)| i);
                let (a, b) = args.split_at(mid);
                out.write_all(chunk(json!({"tool_calls": [{"index": i, "id": format!("call_{i}_{}", rand_suffix()), "type": "function", "function": {"name": name, "arguments": ""}}]}), None).as_bytes())?;
                out.write_all(
                    chunk(
                        json!({"tool_calls": [{"index": i, "function": {"arguments": a}}]}),
                        None,
                    )
                    .as_bytes(),
                )?;
                out.write_all(
                    chunk(
                        json!({"tool_calls": [{"index": i, "function": {"arguments": b}}]}),
                        None,
                    )
                    .as_bytes(),
                )?;
            }
            out.write_all(chunk(json!({}), Some("tool_calls")).as_bytes())?;
            out.write_all(b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10}}\n\n")?;
            out.write_all(b"data: [DONE]\n\n")?;
        }
        Reply::Status(code, body, retry_after) => {
            let extra = retry_after
                .map(|s| format!("Retry-After: {s}\r\n"))
                .unwrap_or_default();
            write!(
                out,
                "HTTP/1.1 {code} Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
                body.len()
            )?;
        }
        Reply::CutOff(text) => {
            out.write_all(sse_head.as_bytes())?;
            out.write_all(chunk(json!({"role": "assistant", "content": text}), None).as_bytes())?;
        }
        Reply::EmptyChoices => {
            out.write_all(sse_head.as_bytes())?;
            out.write_all(b"data: {\"id\":\"c\",\"choices\":[]}\n\ndata: [DONE]\n\n")?;
        }
        Reply::Hang(d) => {
            out.write_all(sse_head.as_bytes())?;
            out.flush()?;
            std::thread::sleep(d);
        }
    }
    out.flush()
}

fn stream_text(
    out: &mut TcpStream,
    text: &str,
    chunk: &dyn Fn(Value, Option<&str>) -> String,
) -> std::io::Result<()> {
    let mid = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(0, |(i, _)| i);
    let (a, b) = text.split_at(mid);
    out.write_all(chunk(json!({"role": "assistant", "content": a}), None).as_bytes())?;
    out.flush()?;
    out.write_all(chunk(json!({"content": b}), None).as_bytes())?;
    out.write_all(chunk(json!({}), Some("stop")).as_bytes())?;
    out.write_all(b"data: [DONE]\n\n")
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// The messages of a request.
pub fn messages(req: &Value) -> Vec<Value> {
    req["messages"].as_array().cloned().unwrap_or_default()
}

/// The content of the first user message (the task the agent was given).
pub fn prompt(req: &Value) -> String {
    messages(req)
        .iter()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The last message of a request.
pub fn last(req: &Value) -> Value {
    messages(req).last().cloned().unwrap_or(Value::Null)
}

/// The tool results in a request, in order.
pub fn tool_results(req: &Value) -> Vec<String> {
    messages(req)
        .iter()
        .filter(|m| m["role"] == "tool")
        .filter_map(|m| m["content"].as_str().map(str::to_string))
        .collect()
}

/// The names of the tools offered in a request.
pub fn tool_names(req: &Value) -> Vec<String> {
    req["tools"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter_map(|t| t["function"]["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
