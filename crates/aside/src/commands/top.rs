//! `aside top`: a live dashboard of tasks. One listing when it opens, then the daemon's
//! events keep the table current (the task list is never polled); the table is drawn at most
//! 20 times a second and only when something changed, with a redraw each second for ages
//! and rates.

mod feed;
mod filter;
mod keys;
mod log;
mod model;
mod term;
mod view;

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aside_client::Client;
use aside_protocol::{TaskId, TaskState};
use crossterm::event::{Event as TermEvent, EventStream};
use futures_core::Stream;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::task::JoinHandle;

use self::feed::{Act, News, Tx};
use self::filter::Filter;
use self::keys::{Action, Mode};
use self::log::LogPane;
use self::model::Model;
use self::term::Tui;
use self::view::{Theme, Ui};
use crate::cli::TopArgs;
use crate::connect::Context;
use crate::task_filter::TaskFilter;

/// The shortest time between two frames.
const FRAME: Duration = Duration::from_millis(50);
/// Ages and rates move on by themselves: a frame at least this often.
const TICK: Duration = Duration::from_secs(1);
/// Ticks between two looks at the slot limits.
const LIMITS_EVERY: u32 = 10;

pub async fn run(ctx: &Context, a: TopArgs) -> anyhow::Result<i32> {
    if !crate::terminal::interactive() {
        anyhow::bail!("aside top needs a terminal (its input and output on one)");
    }
    let filter = Filter {
        task: TaskFilter {
            states: a.states,
            groups: a.groups,
            labels: a.labels,
        },
        owners: a.owners,
        text: String::new(),
    };
    let client = Arc::new(ctx.client().await?);
    let mut model = Model::new(filter);
    model.load(feed::load(&client).await?);
    let (tx, rx) = mpsc::unbounded_channel();
    let mut app = App {
        client,
        model,
        ui: Ui {
            mode: Mode::Table,
            theme: Theme::from_env(),
            status: String::new(),
            confirm: None,
            log: None,
            height: 0,
            slots: None,
        },
        tx,
        rx,
        follower: None,
        sampler: None,
        select_when_seen: None,
        attach: None,
        ticks: 0,
        quit: false,
    };
    feed::limits(&app.client, &app.tx);
    let (guard, mut tui) = term::Guard::enter()?;
    let r = app.run(&mut tui).await;
    drop(tui);
    drop(guard);
    r.map(|()| 0)
}

struct App {
    client: Arc<Client>,
    model: Model,
    ui: Ui,
    tx: Tx,
    rx: UnboundedReceiver<News>,
    /// Reads the output of the task whose pane is open.
    follower: Option<JoinHandle<()>>,
    /// The sampling of output sizes under way (one at a time).
    sampler: Option<JoinHandle<()>>,
    /// A task to select once it shows up (the new task of a restart).
    select_when_seen: Option<TaskId>,
    /// A task to attach to, once the key that asked is handled.
    attach: Option<TaskId>,
    ticks: u32,
    quit: bool,
}

impl App {
    async fn run(&mut self, tui: &mut Tui) -> anyhow::Result<()> {
        let mut keys = EventStream::new();
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut drawn = Instant::now();
        let mut dirty = true;
        loop {
            let draw_at = tokio::time::Instant::from_std(drawn + FRAME);
            tokio::select! {
                event = self.client.next_event() => match event {
                    Some(e) => {
                        if let Some(id) = self.model.apply(e) {
                            feed::fetch(&self.client, id, &self.tx);
                        }
                    }
                    None => self.reconnect(tui).await?,
                },
                key = next_key(&mut keys) => match key {
                    Some(Ok(TermEvent::Key(k))) => {
                        if let Some(action) = keys::action(self.ui.mode, k) {
                            self.act(action);
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => return Ok(()),
                },
                Some(news) = self.rx.recv() => self.news(news),
                _ = tick.tick() => {
                    self.ticks = self.ticks.wrapping_add(1);
                    if self.ticks.is_multiple_of(LIMITS_EVERY) {
                        feed::limits(&self.client, &self.tx);
                    }
                    self.sample();
                }
                _ = tokio::time::sleep_until(draw_at), if dirty => {
                    tui.draw(|f| view::draw(f, &mut self.ui, &mut self.model))?;
                    drawn = Instant::now();
                    dirty = false;
                    continue;
                }
                _ = term.recv() => return Ok(()),
                _ = hup.recv() => return Ok(()),
                _ = int.recv() => return Ok(()),
            }
            dirty = true;
            if self.quit {
                return Ok(());
            }
            if let Some(id) = self.attach.take() {
                // The key stream lets go of the terminal while the session has it.
                drop(keys);
                self.attach_to(tui, id).await?;
                keys = EventStream::new();
            }
        }
    }

    /// The task keys act on: the one whose output is shown, else the selected one.
    fn target(&self) -> Option<TaskId> {
        match &self.ui.log {
            Some(p) => Some(p.id),
            None => self.model.selected(),
        }
    }

    /// Where Esc and the end of a question go back to.
    fn back_mode(&self) -> Mode {
        match self.ui.log {
            Some(_) => Mode::Log,
            None => Mode::Table,
        }
    }

    fn act(&mut self, action: Action) {
        let page = self.ui.height.max(1) as isize;
        match action {
            Action::Quit => self.quit = true,
            Action::Move(n) => self.model.step(n),
            Action::Page(n) => self.model.step(n * page),
            Action::First => self.model.first(),
            Action::Last => self.model.last(),
            Action::Follow => {
                if let Some(id) = self.model.selected() {
                    self.ui.log = Some(LogPane::new(id));
                    self.follower = Some(feed::follow(&self.client, id, &self.tx));
                    self.ui.mode = Mode::Log;
                }
            }
            Action::Back => {
                if self.ui.mode == Mode::Log {
                    self.close_pane();
                }
                self.ui.mode = self.back_mode();
            }
            Action::Stop => self.on_live(|app, id, _| {
                app.ui.confirm = Some(id);
                app.ui.mode = Mode::Confirm;
            }),
            Action::Confirm(yes) => {
                if let (true, Some(id)) = (yes, self.ui.confirm.take()) {
                    self.ui.status = format!("stopping task {id}");
                    feed::act(&self.client, Act::Stop, id, &self.tx);
                }
                self.ui.confirm = None;
                self.ui.mode = self.back_mode();
            }
            Action::Detach => self.on_live(|app, id, t| match t.detached {
                true => app.ui.status = format!("task {id} is in the background already"),
                false => feed::act(&app.client, Act::Detach, id, &app.tx),
            }),
            Action::PauseResume => self.on_live(|app, id, t| match t.state {
                TaskState::Running { .. } => {
                    let act = if t.paused { Act::Resume } else { Act::Pause };
                    feed::act(&app.client, act, id, &app.tx);
                }
                _ => app.ui.status = format!("task {id} is queued: only a running task pauses"),
            }),
            Action::Restart => self.restart(),
            Action::Attach => self.on_live(|app, id, t| match (&t.state, t.kind.input().pty()) {
                (TaskState::Running { .. }, Some(_)) => app.attach = Some(id),
                (TaskState::Running { .. }, None) => {
                    app.ui.status = format!(
                        "task {id} has no terminal (not started with --pty): l follows its output"
                    )
                }
                _ => app.ui.status = format!("task {id} is queued: attach once it runs"),
            }),
            Action::EditFilter => {
                // A new text each time, as a search is.
                self.model.filter.text.clear();
                self.model.touch();
                self.ui.mode = Mode::Filter;
            }
            Action::Type(c) => {
                self.model.filter.text.extend(c.to_lowercase());
                self.model.touch();
            }
            Action::Erase => {
                self.model.filter.text.pop();
                self.model.touch();
            }
            Action::EndFilter(keep) => {
                if !keep {
                    self.model.filter.text.clear();
                    self.model.touch();
                }
                self.ui.mode = Mode::Table;
            }
            Action::CycleState => {
                self.model.filter.cycle_states();
                self.model.touch();
            }
            Action::Help => self.ui.mode = Mode::Help,
        }
    }

    /// Runs `then` with the target task when it has not ended; else says that it has.
    fn on_live(&mut self, then: impl FnOnce(&mut Self, TaskId, &aside_protocol::TaskRecord)) {
        let Some(id) = self.target() else { return };
        let Some(t) = self.model.row(id).map(|r| r.rec.clone()) else {
            return;
        };
        match t.is_terminal() {
            true => self.ui.status = format!("task {id} {}", t.state.describe()),
            false => then(self, id, &t),
        }
    }

    fn restart(&mut self) {
        let Some(id) = self.target() else { return };
        match self.model.row(id).map(|r| r.rec.is_terminal()) {
            Some(true) => feed::act(&self.client, Act::Restart, id, &self.tx),
            Some(false) => {
                self.ui.status = format!("task {id} has not ended: only a finished task restarts")
            }
            None => {}
        }
    }

    fn close_pane(&mut self) {
        if let Some(f) = self.follower.take() {
            f.abort();
        }
        self.ui.log = None;
    }

    fn news(&mut self, news: News) {
        match news {
            News::Fetched(id, rec) => {
                self.model.fetched(id, rec.map(|r| *r));
                if self.select_when_seen == Some(id) {
                    self.select_when_seen = None;
                    self.model.select(id);
                }
            }
            News::Sampled(sizes) => {
                for (id, bytes, at) in sizes {
                    self.model.sampled(id, bytes, at);
                }
            }
            News::Said(s) => self.ui.status = s,
            News::Restarted(id) => match self.model.row(id) {
                Some(_) => self.model.select(id),
                None => self.select_when_seen = Some(id),
            },
            News::Output(id, bytes) => {
                if let Some(p) = self.ui.log.as_mut().filter(|p| p.id == id) {
                    p.push(&bytes);
                }
            }
            News::OutputEnd(id, why) => {
                if let Some(p) = self.ui.log.as_mut().filter(|p| p.id == id) {
                    p.end = Some(why);
                }
            }
            News::Limits(s) => self.ui.slots = Some(s),
        }
    }

    /// Asks for the output sizes of the running rows in sight (see [`feed::sample`]).
    fn sample(&mut self) {
        if self.sampler.as_ref().is_some_and(|s| !s.is_finished()) {
            return;
        }
        let ids = self.model.running_in_window(self.ui.height);
        if !ids.is_empty() && self.ui.log.is_none() {
            self.sampler = Some(feed::sample(&self.client, ids, &self.tx));
        }
    }

    /// The daemon went away (restarted, or died and is started again): a new connection and
    /// a new listing, since what happened meanwhile is not known.
    async fn reconnect(&mut self, tui: &mut Tui) -> anyhow::Result<()> {
        self.ui.status = "the daemon went away: connecting again".into();
        tui.draw(|f| view::draw(f, &mut self.ui, &mut self.model))?;
        let client = Arc::new(self.client.reconnect().await?);
        self.model.load(feed::load(&client).await?);
        self.client = client;
        feed::limits(&self.client, &self.tx);
        self.ui.status = "connected again to the daemon".into();
        Ok(())
    }

    /// `aside attach` for a terminal task, in this terminal: the session of that command
    /// (run as a child, so that its input reader ends with it and takes no key meant for the
    /// dashboard), then the dashboard again once it detaches or the task ends.
    async fn attach_to(&mut self, tui: &mut Tui, id: TaskId) -> anyhow::Result<()> {
        term::lend();
        let exe = std::env::current_exe()?;
        let ran = tokio::task::spawn_blocking(move || {
            std::process::Command::new(exe)
                .arg("attach")
                .arg(id.to_string())
                .status()
        })
        .await?;
        term::take_back()?;
        // Drawn whole again (a resize clears the screen and what the last frame was).
        let area = tui.size()?;
        tui.resize(ratatui::layout::Rect::new(0, 0, area.width, area.height))?;
        self.ui.status = match ran {
            Ok(s) if s.success() => format!("back from task {id}"),
            Ok(s) => format!("aside attach {id} ended with {s}"),
            Err(e) => format!("aside attach {id} could not start: {e}"),
        };
        Ok(())
    }
}

/// The next key, resize or error from the terminal.
async fn next_key(keys: &mut EventStream) -> Option<std::io::Result<TermEvent>> {
    std::future::poll_fn(|cx| Pin::new(&mut *keys).poll_next(cx)).await
}
