//! The command line: every command and flag, and the help text around them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "aside",
    version,
    about = "Run shell commands and AI subagents as tasks: in the foreground or the background, detachable, stoppable",
    long_about = None,
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a command as a task (foreground by default: live output, the command's exit code).
    ///
    /// One argument with spaces or shell syntax runs through `sh -c`; several are executed
    /// directly. In the foreground, Ctrl+Z moves the task to the background (exit 148) and
    /// Ctrl+C stops it.
    Run(RunArgs),
    /// Start one subagent as a task, like `run` does for a command.
    ///
    /// In the foreground its progress and answer stream to the terminal; Ctrl+Z moves it to
    /// the background and Ctrl+C stops it (with everything it started).
    Agent(AgentArgs),
    /// Run a top-level agent on a prompt, without interaction, until it answers.
    ///
    /// It delegates with the task tools; before it finishes it waits for its own background
    /// tasks (up to agent.settle) and handles their notifications.
    Exec(ExecArgs),
    /// List the agent definitions found for this directory, with any warnings.
    Agents(AgentsArgs),
    /// Serve the Model Context Protocol on stdin/stdout: aside's tools for any coding agent.
    ///
    /// Register it with `claude mcp add aside -- aside mcp` (see --print-config for others).
    /// Each connection owns the tasks it starts; they outlive it unless --stop-on-exit.
    Mcp(McpArgs),
    /// List tasks: queued and running ones, and finished ones you have not seen yet.
    Ls(LsArgs),
    /// Print a task's output, or (given a session id such as s12) a conversation's transcript.
    ///
    /// With --until REGEX, wait until the output matches (colours and other escape sequences
    /// left out) and print it up to the end of the match: `aside logs 3 --until 'listening
    /// on \S+'`. Exits 0 on a match, 1 if the task ended first, 124 if --timeout ran out.
    Logs(LogsArgs),
    /// Wait until tasks end; exits with the first failing task's exit code.
    Wait(WaitArgs),
    /// Stop tasks and their whole process tree (SIGTERM, grace, SIGKILL).
    Stop(StopArgs),
    /// Move a running foreground task to the background.
    Detach(IdArg),
    /// Pause running tasks: every process of their tree is stopped (SIGSTOP) until resumed.
    ///
    /// A paused task keeps its slot, and its --timeout keeps running. `aside stop` ends a
    /// paused task as any other. Pausing a paused task changes nothing.
    Pause(PauseArgs),
    /// Resume paused tasks: every process of their tree continues (SIGCONT).
    Resume(PauseArgs),
    /// Run a finished task again, as a new task: prints the new task's id.
    ///
    /// The same command, working directory, name, group, labels, timeout, dedupe key and input
    /// (--pty, --stdin), with this shell's environment, as `aside run` would have (the
    /// stored task keeps no environment). In the background unless --fg.
    Restart(RestartArgs),
    /// Show or change how many tasks may run at once: over all, or in a group.
    ///
    /// `aside slots` shows the limits and their use; `aside slots 4` sets the global limit;
    /// `aside slots build 2` sets group build's. A change applies at once (raising a limit
    /// starts queued tasks; lowering one stops nothing) and is kept across daemon restarts,
    /// ahead of the config file, until `aside slots [GROUP] default` goes back to it.
    Slots(SlotsArgs),
    /// Type into a task's terminal (--pty) or write to its input (--stdin).
    ///
    /// The text goes first, then the keys in order: `aside send 3 'print(6*7)' --key Enter`.
    /// Keys: Enter, Tab, Escape, Backspace, Up, Down, Left, Right, Home, End, PageUp,
    /// PageDown, Delete, F1-F12, C-<letter> (Ctrl), M-<key> (Alt).
    Send(SendArgs),
    /// Send a signal to a task's processes (a terminal's foreground programs for --pty).
    ///
    /// INT, TERM, HUP, QUIT, KILL, USR1, USR2, STOP, CONT, or WINCH with --size (resizes
    /// the terminal).
    Signal(SignalArgs),
    /// Attach this terminal to a task's terminal (--pty): its screen, then live.
    ///
    /// Keys go to the task; the detach key (Ctrl+\ unless --detach-key or the config's
    /// detach_key say otherwise) leaves it running. Several terminals may attach at once.
    Attach(AttachArgs),
    /// A live dashboard of tasks: states, groups and slots in use, ages, output rates,
    /// agents' progress, how ended tasks ended.
    ///
    /// Kept current by the daemon's events. Keys (? lists them): follow a task's output,
    /// stop, detach, pause/resume, restart, attach; / and f filter. NO_COLOR turns colours off.
    Top(TopArgs),
    /// Show a task's whole record.
    Info(InfoArgs),
    /// Remove finished tasks and their logs.
    Clean(CleanArgs),
    /// Start, stop or query the daemon (the CLI starts it by itself when needed).
    Daemon(DaemonArgs),
    /// Print the JSON Schema of the daemon's JSON-RPC protocol.
    Schema,
    /// Print a shell completion script: bash, zsh, fish (also elvish, powershell).
    ///
    /// bash: `aside completions bash > ~/.local/share/bash-completion/completions/aside`;
    /// zsh: `aside completions zsh > "${fpath[1]}/_aside"`;
    /// fish: `aside completions fish > ~/.config/fish/completions/aside.fish`.
    Completions(CompletionsArgs),
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell the script is for.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Start in the background and print only the task's id.
    #[arg(long)]
    pub bg: bool,
    /// A label shown in listings.
    #[arg(long)]
    pub name: Option<String>,
    /// Working directory (default: the current one).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (repeatable).
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Concurrency group; its limit comes from the config file.
    #[arg(long, value_name = "G")]
    pub group: Option<String>,
    /// Hard limit, then the task is killed: 500ms, 30s, 2m, 1h or none.
    #[arg(long, value_name = "DUR")]
    pub timeout: Option<String>,
    /// Foreground wait budget, then the task moves to the background: 30s, 2m or none.
    #[arg(long, value_name = "DUR")]
    pub wait: Option<String>,
    /// Return the live task holding this key instead of starting another.
    #[arg(long, value_name = "KEY")]
    pub dedupe: Option<String>,
    /// A label of your own, shown in listings and filtered on with `aside ls --label`
    /// (repeatable).
    #[arg(long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// Start only once these tasks have succeeded (repeatable, or a comma list: --after 3,4);
    /// if one does not, this task fails with "dependency failed" without running.
    #[arg(long, value_name = "ID", value_delimiter = ',')]
    pub after: Vec<String>,
    /// With --bg, print the whole record as JSON instead of the id.
    #[arg(long)]
    pub json: bool,
    /// Run it on a terminal (a pseudo-terminal, TERM=xterm-256color). In the foreground this
    /// terminal is attached to it: keys go to the program, the detach key leaves it running.
    #[arg(long, conflicts_with = "stdin")]
    pub pty: bool,
    /// The terminal's size, COLSxROWS (default: this terminal's, else 120x40).
    #[arg(long, value_name = "COLSxROWS", requires = "pty", value_parser = term_size)]
    pub size: Option<aside_protocol::TermSize>,
    /// Give the task a pipe as its input: in the foreground this process's stdin goes to it;
    /// in the background, write to it with `aside send`.
    #[arg(long)]
    pub stdin: bool,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct SlotsArgs {
    /// A group's name, and the limit to set (a number, or default for the config file's).
    #[arg(value_names = ["GROUP", "N"], num_args = 0..=2)]
    pub args: Vec<String>,
    /// Print the limits in force as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SendArgs {
    /// The task.
    pub id: String,
    /// Text to send as it is (no newline is added).
    pub text: Option<String>,
    /// A named key sent after the text (repeatable, in order): Enter, C-c, Up, ...
    #[arg(long = "key", short = 'k', value_name = "KEY")]
    pub keys: Vec<String>,
    /// Then close the input (for --stdin tasks: the program reads end of file).
    #[arg(long)]
    pub eof: bool,
}

#[derive(Args, Debug)]
pub struct SignalArgs {
    /// The task.
    pub id: String,
    /// INT, TERM, HUP, QUIT, KILL, USR1, USR2, STOP, CONT or WINCH (with or without SIG).
    pub signal: String,
    /// For WINCH: the terminal's new size, COLSxROWS.
    #[arg(long, value_name = "COLSxROWS", value_parser = term_size)]
    pub size: Option<aside_protocol::TermSize>,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// The task.
    pub id: String,
    /// The key that detaches, such as C-\\ (Ctrl+\\) or C-] (default: the config's detach_key).
    #[arg(long, value_name = "KEY")]
    pub detach_key: Option<String>,
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// The agent definition's name (see `aside agents`).
    pub agent: String,
    /// The task for the agent.
    pub prompt: String,
    /// Start in the background and print only the task's id (the default for agents whose
    /// definition says `background: true`).
    #[arg(long, conflicts_with = "fg")]
    pub bg: bool,
    /// Start in the foreground even if the definition says `background: true`.
    #[arg(long)]
    pub fg: bool,
    /// Continue a finished conversation (a session id such as s12).
    #[arg(long, value_name = "SESSION")]
    pub session: Option<String>,
    /// A label shown in listings.
    #[arg(long)]
    pub name: Option<String>,
    /// Hard limit, then the agent is stopped: 30s, 10m, 1h or none.
    #[arg(long, value_name = "DUR")]
    pub timeout: Option<String>,
    /// Foreground wait budget, then the agent moves to the background.
    #[arg(long, value_name = "DUR")]
    pub wait: Option<String>,
    /// With --bg, print the whole record as JSON instead of the id.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// The agent to run.
    #[arg(long, default_value = "general")]
    pub agent: String,
    /// Print progress as JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
    /// Hard limit, then the agent is stopped: 30s, 10m, 1h or none.
    #[arg(long, value_name = "DUR")]
    pub timeout: Option<String>,
    /// The task for the agent.
    pub prompt: String,
}

#[derive(Args, Debug)]
pub struct McpArgs {
    /// Also offer read, write, edit, glob and grep (host agents usually have their own).
    #[arg(long)]
    pub file_tools: bool,
    /// Stop this connection's running tasks when the client goes away.
    #[arg(long)]
    pub stop_on_exit: bool,
    /// How long a foreground bash or task call waits before its work moves to the background
    /// (under Codex's 60-second tool timeout by default); a client's cancel after that leaves
    /// the work running.
    #[arg(long, value_name = "DURATION", default_value = aside_mcp::DEFAULT_WAIT_TEXT)]
    pub wait: String,
    /// Print the snippet that registers aside with a client and exit: claude, codex,
    /// opencode, cursor or gemini.
    #[arg(long, value_name = "CLIENT")]
    pub print_config: Option<String>,
}

#[derive(Args, Debug)]
pub struct AgentsArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Include every finished task (oldest first, fetched a page at a time).
    #[arg(long, short)]
    pub all: bool,
    /// With --all, only the newest N tasks (of those the filters let through).
    #[arg(long, value_name = "N", requires = "all")]
    pub limit: Option<usize>,
    #[arg(long)]
    pub json: bool,
    /// Only tasks in these states (repeatable, or a comma list); `ended` is any state a
    /// task ends in. It filters what is listed: add --all to look through finished tasks.
    #[arg(long = "state", value_name = "STATE", value_delimiter = ',')]
    pub states: Vec<crate::task_filter::StateFilter>,
    /// Only tasks of this concurrency group (repeatable). Like --state, it filters what is
    /// listed.
    #[arg(long = "group", value_name = "G")]
    pub groups: Vec<String>,
    /// Only tasks with this label (K=V), or with this key whatever its value (K)
    /// (repeatable: every one must match).
    #[arg(long = "label", value_name = "K=V")]
    pub labels: Vec<crate::task_filter::LabelFilter>,
}

#[derive(Args, Debug)]
pub struct TopArgs {
    /// Only tasks of this owner (repeatable).
    #[arg(long = "owner", value_name = "OWNER")]
    pub owners: Vec<String>,
    /// Only tasks of this concurrency group (repeatable).
    #[arg(long = "group", value_name = "G")]
    pub groups: Vec<String>,
    /// Only tasks in these states (repeatable, or a comma list), as in ls; f changes it.
    #[arg(long = "state", value_name = "STATE", value_delimiter = ',')]
    pub states: Vec<crate::task_filter::StateFilter>,
    /// Only tasks with this label (K=V), or with this key whatever its value (K)
    /// (repeatable: every one must match).
    #[arg(long = "label", value_name = "K=V")]
    pub labels: Vec<crate::task_filter::LabelFilter>,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// A task id, or a session id (s12) for that conversation's transcript as JSON lines.
    pub id: String,
    /// Keep printing new output until the task ends.
    #[arg(long, short)]
    pub follow: bool,
    /// Start with the last N lines.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Wait until the output matches REGEX, print it up to the end of the match, exit 0.
    /// Matched against the text without escape sequences, from the start (or --tail) on;
    /// ^ and $ match at line ends. With -f, output is printed as it comes.
    #[arg(long, value_name = "REGEX")]
    pub until: Option<String>,
    /// With --until: give up after this long (exit 124; the task goes on): 30s, 2m.
    /// Without it, --until waits for a match or the task's end.
    #[arg(long, value_name = "DUR", requires = "until")]
    pub timeout: Option<String>,
    /// For a terminal task (--pty): print its screen now, as text, instead of its output
    /// (with --until: once the output matched).
    #[arg(long, conflicts_with_all = ["follow", "tail"])]
    pub screen: bool,
    /// The output as JSON lines, one object per piece read: {"offset": N, "encoding":
    /// "utf8" or "base64", "data": "..."} (base64 where the bytes are not UTF-8 text). A
    /// conversation's transcript is JSON lines already.
    #[arg(long, conflicts_with = "screen")]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Give up after this long (the tasks keep running; exit 148).
    #[arg(long, value_name = "DUR")]
    pub timeout: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Why; recorded with the task.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PauseArgs {
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Print the records as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RestartArgs {
    /// The finished task to run again.
    pub id: String,
    /// Follow it in the foreground, as `aside run` does (live output, its exit code).
    #[arg(long)]
    pub fg: bool,
    /// Set an environment variable (repeatable): the first run's --env are not kept.
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Print the new task's whole record as JSON instead of its id (without --fg).
    #[arg(long, conflicts_with = "fg")]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct IdArg {
    pub id: String,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    pub id: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CleanArgs {
    /// Only tasks that ended at least this long ago.
    #[arg(long, value_name = "DUR")]
    pub older_than: Option<String>,
}

#[derive(Args, Debug)]
pub struct DaemonArgs {
    #[command(subcommand)]
    pub action: DaemonAction,
}

#[derive(Subcommand, Debug)]
pub enum DaemonAction {
    /// Start the daemon in the background (if it is not running).
    Start,
    /// Stop the daemon; its running tasks are cancelled, queued ones wait for the next start.
    Stop {
        /// Leave running tasks running: the next daemon (started by any aside command)
        /// adopts them.
        #[arg(long)]
        keep_tasks: bool,
    },
    /// Replace the daemon with a new one (after an upgrade, say): running tasks keep
    /// running, their output and their slots, and clients reconnect.
    Restart,
    /// Report the daemon's pid and socket; exits 1 when no daemon runs.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Run the daemon in this process (what `start` launches).
    #[command(hide = true)]
    Run,
}

/// The text after `aside --help`: files, settings with their defaults, exit codes.
pub fn after_help(paths: Option<&aside_core::Paths>) -> String {
    let (home, config) = match paths {
        Some(p) => (
            p.home.display().to_string(),
            p.config_file.display().to_string(),
        ),
        None => ("(unresolved: set ASIDE_HOME)".into(), "(unresolved)".into()),
    };
    let settings = aside_core::Config::default()
        .describe()
        .lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "Files:
  state directory  {home}
  config file      {config}
  ASIDE_HOME sets both (config.toml inside it); otherwise XDG_STATE_HOME and XDG_CONFIG_HOME.
  ASIDE_OWNER names the owner this CLI acts for (default: cli).

Settings (config file keys, shown with their defaults):
{settings}

Exit codes:
  the command's own code   when it exits by itself (128+N when killed by signal N)
  124  the task hit its --timeout          126  the command could not be executed
  125  aside itself failed                  127  the command was not found
  130  the task was stopped (Ctrl+C, aside stop)
  148  the task is still running in the background (Ctrl+Z, aside detach, the wait
       budget ran out, or aside wait --timeout expired)
  aside logs --until: 0 on a match, 1 if the task ended first, 124 if --timeout ran out"
    )
}

/// `--size COLSxROWS`, checked where it is read.
fn term_size(s: &str) -> anyhow::Result<aside_protocol::TermSize> {
    aside_protocol::TermSize::parse(s).ok_or_else(|| {
        anyhow::anyhow!(
            "write it as COLSxROWS, each 1 to {}",
            aside_protocol::TermSize::MAX
        )
    })
}
