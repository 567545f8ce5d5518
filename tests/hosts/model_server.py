#!/usr/bin/env python3
"""A scripted model on loopback for driving a coding agent (the host) against `aside mcp`.

One class per wire: OpenAI chat completions (opencode), OpenAI Responses (Codex), Gemini
streamGenerateContent (Gemini CLI), Anthropic Messages (Claude Code). Every wire plays the same
script in the host's main conversation, the request that offers aside's `bash` tool:

  1. call `bash` with run_in_background (a command that writes a marker);
  2. once its result is back: check it names the task id, then call a foreground `bash`;
  3. once that result is back: check it has the foreground output and the background task's
     <task-notification> with its marker; answer with final text.

`--scenario tasks-wake` and `tasks-stop` play Claude Code's interactive CLI following aside's
tasks by MCP Tasks instead (TasksScript, Anthropic wire only).

Requests that offer no aside tool (titles, summaries, routing) get a short text answer. The
conversation is read from each request, so the script holds no state between requests but
the checks, which go to STATE/report.json after every main request. Every request is logged
to STATE/requests.jsonl.

A second listener is an HTTP(S) proxy that refuses everything and logs each destination to
STATE/egress.jsonl: the hosts are pointed at it, so an attempt to leave loopback is seen.
"""

import argparse
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FINAL_TEXT = "All done: the background task ended and the foreground call printed fg-ok."
TASK_ID = re.compile(r"^task_id: (\S+)", re.M)


class Script:
    """The conversation the model plays, and what it checks of the host's tool results."""

    def __init__(self, state_dir, marker, project):
        self.state_dir = state_dir
        self.marker = marker
        self.project = project
        self.lock = threading.Lock()
        self.report = {
            "main_requests": 0,
            "side_requests": 0,
            "tools_offered": [],
            "bash_tool": None,
            "calls": [],
            "checks": {},
            "results": [],
            "final_sent": False,
        }

    def background_command(self):
        # It ends while the foreground call (2 s) runs: its notice comes with that call's
        # result. Without the pause it could end before its own call's result was written,
        # and its notice would come with that result instead (tasks start in a few ms).
        path = os.path.join(self.project, "bg-marker.txt")
        return f"sleep 0.5; echo {self.marker} > {path} && cat {path}"

    def check(self, name, ok, detail):
        self.report["checks"][name] = {"ok": bool(ok), "detail": detail}

    def next_action(self, tools, results, request=None):
        """What to answer a main request offering `tools` whose history holds `results`.

        Returns ("call", tool_name, arguments, call_number) or ("text", text)."""
        bash = pick_bash(tools)
        with self.lock:
            self.report["main_requests"] += 1
            self.report["tools_offered"] = sorted(tools)
            self.report["bash_tool"] = bash
            self.report["results"] = results
            n = len(results)
            if n == 0:
                action = ("call", bash, {
                    "command": self.background_command(),
                    "run_in_background": True,
                    "description": "write the background marker",
                }, 1)
            elif n == 1:
                found = TASK_ID.search(results[0])
                self.report["bg_task_id"] = found.group(1) if found else None
                self.check("background call returned a task id", found, results[0][:400])
                action = ("call", bash, {
                    "command": "sleep 2; echo fg-ok",
                    "description": "a foreground command",
                }, 2)
            else:
                fg = results[1]
                bg_id = self.report.get("bg_task_id") or "<no id>"
                self.check("foreground output came back", "fg-ok" in fg, fg[:400])
                notice = re.search(
                    r"<task-notification>(.*?)</task-notification>", fg, re.S)
                body = notice.group(1) if notice else ""
                self.check(
                    "the next result carried the background task's <task-notification>",
                    notice and f"task {bg_id} " in body and "succeeded" in body,
                    fg[:1500])
                self.check("the notification carried the marker", self.marker in body,
                           body[:800])
                self.report["final_sent"] = True
                action = ("text", FINAL_TEXT)
            if action[0] == "call":
                self.report["calls"].append({"tool": bash, "arguments": action[2]})
            self.save()
            return action

    def side(self, tools=()):
        with self.lock:
            self.report["side_requests"] += 1
            if tools and not self.report["tools_offered"]:
                self.report["tools_offered"] = sorted(tools)
            self.save()

    def save(self):
        path = os.path.join(self.state_dir, "report.json")
        with open(path + ".tmp", "w") as f:
            json.dump(self.report, f, indent=1)
        os.replace(path + ".tmp", path)


WAITING_TEXT = "The command runs in the background; I will wait for it to end."
WOKEN_TEXT = "The background command ended and its output came back."
STOPPED_TEXT = "The background command is stopped."


class TasksScript(Script):
    """Claude Code's interactive CLI following aside's tasks by MCP Tasks (Anthropic wire).

    wake: 1. call `bash` with run_in_background (`sleep 2; echo MARKER`); 2. once its result
    is back, answer with text and end the turn; 3. the host, polling `tasks/get`, sees the
    task end and starts a turn by itself: that request must carry the marker.
    stop: 1. the same with `sleep 600`; 2. call the host's own stop tool for background tasks
    with the id the host gave; 3. answer with text.

    The host rewrites the history it sends (it merged the text of step 2 into the message of
    step 1's call), so the steps go by what this model already answered, and the report keeps
    word for word what the host told the model at each step."""

    def __init__(self, state_dir, marker, project, stop):
        super().__init__(state_dir, marker, project)
        self.stop = stop
        self.report.update({"scenario": "tasks-stop" if stop else "tasks-wake",
                            "answered": [], "answered_at": [], "task_result": None,
                            "stop_tool": None, "stop_result": None, "woken": None,
                            "later": []})

    def background_command(self):
        return "sleep 600" if self.stop else f"sleep 2; echo {self.marker}"

    def next_action(self, tools, results, request=None):
        bash = pick_bash(tools)
        messages = (request or {}).get("messages") or []
        with self.lock:
            r = self.report
            r["main_requests"] += 1
            r["tools_offered"] = sorted(tools)
            r["bash_tool"] = bash
            r["results"] = results
            step = len(r["answered"])
            if step == 0:
                action = ("call", bash, {"command": self.background_command(),
                                         "run_in_background": True,
                                         "description": "a background command"}, 1)
            elif step == 1:
                r["task_result"] = results[-1] if results else None
                action = self.stop_call(request, r["task_result"] or "") if self.stop \
                    else ("text", WAITING_TEXT)
            elif step == 2:
                if self.stop:
                    r["stop_result"] = results[-1] if len(results) > 1 else None
                    action = ("text", STOPPED_TEXT)
                else:
                    r["woken"] = notes_after_call(messages)
                    self.check("the host woke the model with the command's output",
                               self.marker in r["woken"], r["woken"][:1500])
                    action = ("text", WOKEN_TEXT)
            else:
                r["later"].append(notes_after_call(messages))
                action = ("text", "ok")
            r["answered"].append(action[1] if action[0] == "text" else f"call {action[1]}")
            r["answered_at"].append(round(time.time(), 3))
            r["final_sent"] = step >= 2
            if action[0] == "call":
                r["calls"].append({"tool": action[1], "arguments": action[2]})
            self.save()
            return action

    def stop_call(self, request, result):
        """The host's stop tool for background tasks, called with the id it gave."""
        tools = {t.get("name", ""): t for t in request.get("tools") or []}
        name = next((n for n in ("TaskStop", "KillShell", "KillBash") if n in tools), None)
        if name is None:
            self.check("the host offers a stop tool for background tasks", False,
                       ", ".join(sorted(tools)))
            return ("text", STOPPED_TEXT)
        schema = tools[name].get("input_schema") or {}
        self.report["stop_tool"] = {"name": name, "input_schema": schema}
        # "... moved to the background as task ID ...; To stop it, use TaskStop with
        # task_id "ID"" (Claude Code 2.1.332).
        found = re.search(r"task_id\W+([\w-]+)", result) \
            or re.search(r"background as task ([\w-]+)", result)
        self.check("the background call's result names the host's task id", found,
                   result[:800])
        key = next((k for k in (schema.get("properties") or {}) if "id" in k.lower()),
                   "task_id")
        return ("call", name, {key: found.group(1) if found else ""}, 2)


def notes_after_call(messages):
    """The text the host added in user messages after the model's first answer (tool results
    aside): where a host puts what it tells the model by itself."""
    out, seen = [], False
    for m in messages:
        seen = seen or m.get("role") == "assistant"
        if not seen or m.get("role") != "user":
            continue
        content = m.get("content")
        blocks = [content] if isinstance(content, str) else content or []
        out += [text_of(b) for b in blocks
                if isinstance(b, str) or b.get("type") == "text"]
    return "\n".join(out)


def pick_bash(tools):
    """aside's bash tool among the host's tools: `bash` with aside's server prefix, or bare."""
    for t in tools:
        if "aside" in t.lower() and t.lower().endswith("bash"):
            return t
    return "bash" if "bash" in tools else None


def text_of(content):
    """The text of a tool result in any of the wires' shapes (string, parts, nested)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(text_of(c) for c in content)
    if isinstance(content, dict):
        for key in ("text", "output", "content", "result", "response"):
            if key in content:
                return text_of(content[key])
        return json.dumps(content)
    return str(content)


class Wire:
    """The transport common to every wire: logging, SSE framing, dispatch."""

    def __init__(self, handler, script):
        self.h = handler
        self.script = script

    def sse_start(self):
        self.h.send_response(200)
        self.h.send_header("Content-Type", "text/event-stream")
        self.h.send_header("Cache-Control", "no-cache")
        self.h.send_header("Connection", "close")
        self.h.end_headers()
        self.h.close_connection = True

    def sse(self, data, event=None):
        frame = ""
        if event:
            frame += f"event: {event}\n"
        frame += "data: " + (data if isinstance(data, str) else json.dumps(data)) + "\n\n"
        self.h.wfile.write(frame.encode())
        self.h.wfile.flush()

    def json(self, obj, status=200):
        body = json.dumps(obj).encode()
        self.h.send_response(status)
        self.h.send_header("Content-Type", "application/json")
        self.h.send_header("Content-Length", str(len(body)))
        self.h.end_headers()
        self.h.wfile.write(body)

    def answer(self, body, tools, results, stream):
        """Play the script when aside's bash is offered, else answer with short text."""
        if pick_bash(tools):
            action = self.script.next_action(tools, results, body)
        else:
            self.script.side(tools)
            action = ("text", "ok")
        self.reply(body, action, stream)


class OpenAIChat(Wire):
    """POST .../chat/completions (opencode's openai-compatible provider)."""

    def handle(self, path, body):
        if not path.rstrip("/").endswith("/chat/completions"):
            return self.other(path)
        tools = [t.get("function", {}).get("name", "") for t in body.get("tools") or []]
        results = [text_of(m.get("content")) for m in body.get("messages", [])
                   if m.get("role") == "tool"]
        self.answer(body, tools, results, bool(body.get("stream")))

    def other(self, path):
        if path.rstrip("/").endswith("/models"):
            return self.json({"object": "list", "data": [
                {"id": "scripted", "object": "model", "owned_by": "aside-tests"}]})
        self.json({"error": {"message": f"no {path} here"}}, 404)

    def reply(self, body, action, stream):
        base = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model", "scripted")}
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        if action[0] == "call":
            _, name, args, n = action
            delta = {"role": "assistant", "tool_calls": [{
                "index": 0, "id": f"call_aside_{n}", "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)}}]}
            finish = "tool_calls"
        else:
            delta = {"role": "assistant", "content": action[1]}
            finish = "stop"
        if not stream:
            msg = dict(delta)
            msg.pop("index", None)
            for c in msg.get("tool_calls", []):
                c.pop("index", None)
            return self.json({**base, "object": "chat.completion", "usage": usage,
                              "choices": [{"index": 0, "message": msg,
                                           "finish_reason": finish}]})
        self.sse_start()
        self.sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        self.sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        self.sse({**base, "choices": [], "usage": usage})
        self.sse("[DONE]")


class Responses(Wire):
    """POST .../responses (Codex), streaming SSE."""

    def handle(self, path, body):
        if not path.rstrip("/").endswith("/responses"):
            if path.rstrip("/").endswith("/models"):
                return self.json({"models": [], "data": []})
            return self.json({"error": {"message": f"no {path} here"}}, 404)
        # Codex groups an MCP server's tools in a namespace (`mcp__aside`); a call names
        # the tool and its namespace apart.
        self.namespaces = {}
        tools = []
        for t in body.get("tools") or []:
            if t.get("type") == "namespace":
                for inner in t.get("tools") or []:
                    flat = f"{t.get('name')}__{inner.get('name')}"
                    self.namespaces[flat] = (t.get("name"), inner.get("name"))
                    tools.append(flat)
            else:
                tools.append(t.get("name", ""))
        items = body.get("input") or []
        results = [text_of(i.get("output")) for i in items
                   if isinstance(i, dict) and i.get("type") == "function_call_output"]
        self.answer(body, tools, results, True)

    def reply(self, body, action, stream):
        rid = f"resp_scripted_{int(time.time() * 1000)}"
        if action[0] == "call":
            _, name, args, n = action
            item = {"type": "function_call", "id": f"fc_aside_{n}", "call_id": f"call_aside_{n}",
                    "name": name, "arguments": json.dumps(args), "status": "completed"}
            if name in self.namespaces:
                item["namespace"], item["name"] = self.namespaces[name]
        else:
            item = {"type": "message", "id": "msg_scripted", "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": action[1], "annotations": []}]}
        usage = {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": 15}
        resp = {"id": rid, "object": "response", "status": "in_progress",
                "model": body.get("model", "scripted"), "output": []}
        self.sse_start()
        self.sse({"type": "response.created", "response": resp}, "response.created")
        self.sse({"type": "response.output_item.added", "output_index": 0, "item": item},
                 "response.output_item.added")
        if action[0] == "text":
            self.sse({"type": "response.output_text.delta", "item_id": item["id"],
                      "output_index": 0, "content_index": 0, "delta": action[1]},
                     "response.output_text.delta")
        self.sse({"type": "response.output_item.done", "output_index": 0, "item": item},
                 "response.output_item.done")
        done = {**resp, "status": "completed", "output": [item], "usage": usage}
        self.sse({"type": "response.completed", "response": done}, "response.completed")


class Gemini(Wire):
    """POST .../models/M:streamGenerateContent?alt=sse and :generateContent (Gemini CLI)."""

    def handle(self, path, body):
        method = path.split("?")[0].rsplit(":", 1)[-1]
        if method == "countTokens":
            return self.json({"totalTokens": 10})
        if method not in ("streamGenerateContent", "generateContent"):
            return self.json({"error": {"code": 404, "message": f"no {path} here"}}, 404)
        config = body.get("generationConfig") or {}
        if config.get("responseMimeType") == "application/json":
            self.script.side()
            return self.reply(body, ("json", json_for(config)),
                              method == "streamGenerateContent")
        tools = [d.get("name", "") for t in body.get("tools") or []
                 for d in t.get("functionDeclarations") or []]
        results = [text_of(p["functionResponse"].get("response"))
                   for c in body.get("contents") or [] for p in c.get("parts") or []
                   if "functionResponse" in p]
        self.answer(body, tools, results, method == "streamGenerateContent")

    def reply(self, body, action, stream):
        if action[0] == "call":
            _, name, args, n = action
            part = {"functionCall": {"name": name, "args": args, "id": f"call_aside_{n}"}}
        else:
            part = {"text": action[1]}
        chunk = {"candidates": [{"content": {"role": "model", "parts": [part]},
                                 "finishReason": "STOP", "index": 0}],
                 "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5,
                                   "totalTokenCount": 15},
                 "modelVersion": "scripted"}
        if not stream:
            return self.json(chunk)
        self.sse_start()
        self.sse(chunk)


def json_for(config):
    """A JSON answer of the shape a structured side request asks for (routing, next speaker)."""
    schema = config.get("responseJsonSchema") or config.get("responseSchema") or {}
    props = schema.get("properties") or {}
    out = {}
    for key, spec in props.items():
        enum = spec.get("enum")
        if key == "next_speaker":
            out[key] = "user"
        elif enum:
            out[key] = enum[0]
        elif str(spec.get("type", "")).lower() == "boolean":
            out[key] = False
        elif str(spec.get("type", "")).lower() in ("number", "integer"):
            out[key] = spec.get("minimum", 1)
        else:
            out[key] = "scripted"
    return json.dumps(out)


class Anthropic(Wire):
    """POST .../v1/messages (Claude Code), streaming."""

    def handle(self, path, body):
        p = path.split("?")[0].rstrip("/")
        if p.endswith("/count_tokens"):
            return self.json({"input_tokens": 10})
        if not p.endswith("/messages"):
            return self.json({"type": "error", "error": {
                "type": "not_found_error", "message": f"no {path} here"}}, 404)
        tools = [t.get("name", "") for t in body.get("tools") or []]
        results = []
        for m in body.get("messages", []):
            if isinstance(m.get("content"), list):
                results += [text_of(b.get("content")) for b in m["content"]
                            if b.get("type") == "tool_result"]
        self.answer(body, tools, results, bool(body.get("stream")))

    def reply(self, body, action, stream):
        model = body.get("model", "scripted")
        usage = {"input_tokens": 10, "output_tokens": 5}
        if action[0] == "call":
            _, name, args, n = action
            block = {"type": "tool_use", "id": f"toolu_aside_{n}", "name": name, "input": args}
            stop = "tool_use"
        else:
            block = {"type": "text", "text": action[1]}
            stop = "end_turn"
        msg = {"id": "msg_scripted", "type": "message", "role": "assistant", "model": model,
               "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
        if not stream:
            return self.json({**msg, "content": [block], "stop_reason": stop})
        self.sse_start()
        self.sse({"type": "message_start", "message": msg}, "message_start")
        if block["type"] == "tool_use":
            start = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        else:
            start = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        self.sse({"type": "content_block_start", "index": 0, "content_block": start},
                 "content_block_start")
        self.sse({"type": "content_block_delta", "index": 0, "delta": delta},
                 "content_block_delta")
        self.sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        self.sse({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                  "usage": {"output_tokens": 5}}, "message_delta")
        self.sse({"type": "message_stop"}, "message_stop")


WIRES = {"openai-chat": OpenAIChat, "responses": Responses, "gemini": Gemini,
         "anthropic": Anthropic}


def log_line(state_dir, name, record):
    with open(os.path.join(state_dir, name), "a") as f:
        f.write(json.dumps(record) + "\n")


def model_handler(wire_class, script, state_dir):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def body(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            try:
                return json.loads(raw) if raw else {}
            except ValueError:
                return {"_raw": raw.decode(errors="replace")}

        def serve(self):
            body = self.body() if self.command == "POST" else {}
            log_line(state_dir, "requests.jsonl", {
                "t": round(time.time(), 3), "method": self.command, "path": self.path,
                "headers": {k: v for k, v in self.headers.items()
                            if k.lower() not in ("authorization", "x-api-key",
                                                 "x-goog-api-key")},
                "body": body})
            try:
                wire_class(self, script).handle(self.path, body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_POST = serve
        do_GET = serve

    return Handler


def proxy_handler(state_dir):
    class Proxy(BaseHTTPRequestHandler):
        """Refuses every request and CONNECT, recording where it was meant to go."""

        def log_message(self, *args):
            pass

        def refuse(self):
            target = self.path if self.command == "CONNECT" else urlsplit(self.path).netloc
            log_line(state_dir, "egress.jsonl", {"t": round(time.time(), 3),
                                                 "method": self.command, "target": target,
                                                 "url": self.path})
            self.send_response(403, "aside host checks: loopback only")
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.close_connection = True

        do_CONNECT = do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = do_PATCH = refuse

    return Proxy


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wire", choices=sorted(WIRES), required=True)
    ap.add_argument("--state", required=True, help="directory for the logs and the report")
    ap.add_argument("--marker", required=True, help="what the background command writes")
    ap.add_argument("--project", required=True, help="the host's project directory")
    ap.add_argument("--scenario", choices=("recipe", "tasks-wake", "tasks-stop"),
                    default="recipe", help="what the model plays (tasks-*: anthropic only)")
    a = ap.parse_args()
    if a.scenario == "recipe":
        script = Script(a.state, a.marker, a.project)
    elif a.wire == "anthropic":
        script = TasksScript(a.state, a.marker, a.project, a.scenario == "tasks-stop")
    else:
        ap.error(f"--scenario {a.scenario} needs --wire anthropic")
    script.save()
    model = ThreadingHTTPServer(("127.0.0.1", 0), model_handler(WIRES[a.wire], script, a.state))
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), proxy_handler(a.state))
    for server in (model, proxy):
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    # The ports go out last, in one file written whole: its presence means both listen.
    ports = os.path.join(a.state, "ports")
    with open(ports + ".tmp", "w") as f:
        f.write(f"{model.server_address[1]} {proxy.server_address[1]}\n")
    os.replace(ports + ".tmp", ports)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
