//! The dashboard's hold on this terminal: raw mode, the alternate screen and a hidden cursor
//! while it runs, and the terminal given back as it was on every way out: a normal exit, an
//! error (the guard's drop), a panic (a hook that restores before the message is printed),
//! and the signals the loop turns into a quit (SIGTERM, SIGHUP, SIGINT).

use std::io::{Stdout, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use crossterm::{cursor, execute, terminal};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

pub type Tui = Terminal<CrosstermBackend<Stdout>>;

/// Whether this process holds the terminal now.
static HELD: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// Holds the terminal until dropped.
pub struct Guard;

impl Guard {
    pub fn enter() -> anyhow::Result<(Guard, Tui)> {
        HOOK.call_once(|| {
            let before = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                release();
                before(info);
            }));
        });
        // Made first: whatever part of the hold failed is undone as it drops.
        let guard = Guard;
        hold()?;
        let tui = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
        Ok((guard, tui))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        release();
    }
}

/// Raw mode, the alternate screen, the cursor hidden.
pub fn hold() -> std::io::Result<()> {
    terminal::enable_raw_mode()?;
    HELD.store(true, Ordering::SeqCst);
    execute!(
        std::io::stdout(),
        terminal::EnterAlternateScreen,
        cursor::Hide
    )
}

/// The terminal as it was: the main screen, the cursor shown, the modes it had. Once, however
/// many ways out call it.
pub fn release() {
    if !HELD.swap(false, Ordering::SeqCst) {
        return;
    }
    let mut out = std::io::stdout();
    let _ = execute!(out, cursor::Show, terminal::LeaveAlternateScreen);
    let _ = out.flush();
    let _ = terminal::disable_raw_mode();
}

/// Lends the terminal to a session of its own (an attached task): out of raw mode, the
/// cursor shown; the dashboard's screen stays the alternate one, so the main screen is left
/// as it was.
pub fn lend() {
    let _ = execute!(std::io::stdout(), cursor::Show);
    let _ = terminal::disable_raw_mode();
}

/// Takes the terminal back after [`lend`]: the session may have left the alternate screen.
pub fn take_back() -> std::io::Result<()> {
    terminal::enable_raw_mode()?;
    execute!(
        std::io::stdout(),
        terminal::EnterAlternateScreen,
        cursor::Hide
    )
}
