//! The progress bar in a real terminal: sumpool runs inside tmux, and the screen is read back
//! with `tmux capture-pane`, while the run goes on, after it ends, and after Ctrl-C.
//!
//! Needs tmux. Without it the test says so and passes, unless SUMPOOL_REQUIRE_TMUX is set
//! (CI sets it, and installs tmux), so it can never be skipped where it matters.

mod util;

use std::process::Command;
use std::time::{Duration, Instant};

use util::{temp_dir, write_file};

/// A tmux server of our own, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(width: u16, height: u16) -> Tmux {
        let tmux = Tmux {
            socket: format!("sumpool-test-{}", std::process::id()),
        };
        tmux.run(&[
            "new-session",
            "-d",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "env",
            "-i",
            "TERM=xterm-256color",
            "PATH=/usr/bin:/bin",
            "bash",
            "--norc",
            "--noprofile",
        ]);
        tmux.keys(&["PS1='PROMPT$ '", "Enter"]);
        tmux.wait_for(|screen| screen.contains("PROMPT$"), "a prompt");
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            output.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "0"])
    }

    fn wait_for(&self, done: impl Fn(&str) -> bool, what: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no {what} on the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// A progress bar line: "<spinner> N/TOTAL files [=====>   ] SIZE/TOTAL (RATE/s), ETA ..."
/// (or, before the total is known, "<spinner> N files, SIZE (RATE/s), ELAPSED").
fn has_bar(screen: &str) -> bool {
    screen
        .lines()
        .any(|line| line.contains(" files") && line.contains("/s)"))
}

#[test]
fn progress_bar_shows_in_a_terminal_and_leaves_no_trace() {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var_os("SUMPOOL_REQUIRE_TMUX").is_none(),
            "tmux is required but missing"
        );
        eprintln!("tmux is not installed: the terminal test did not run");
        return;
    }
    let dir = temp_dir();
    for i in 0..500u32 {
        write_file(dir.path(), format!("t/f{i:03}").as_bytes(), &[b'x'; 4096]);
    }
    let bin = util::sumpool_bin();
    let tmux = Tmux::start(120, 30);
    tmux.keys(&[&format!("cd {}", dir.path().display()), "Enter"]);

    // Standard input stays open for two seconds: the bar is up meanwhile, stdout goes to a
    // file, stderr is the terminal.
    let command = format!(
        "sleep 2 | {} hash t - > out.txt; echo DONE-$?",
        bin.display()
    );
    tmux.keys(&[&command, "Enter"]);
    // All 500 files are done and counted; the bar waits for standard input, the 501st.
    let during = tmux.wait_for(
        |s| has_bar(s) && s.contains("500/501 files"),
        "progress bar",
    );
    assert!(during.contains("ETA"), "{during}");
    let after = tmux.wait_for(|s| s.contains("DONE-0"), "end of the run");
    assert!(!has_bar(&after), "a stale bar is left:\n{after}");
    let out = std::fs::read_to_string(dir.path().join("out.txt")).unwrap();
    assert_eq!(out.lines().count(), 501);

    // Ctrl-C typed at the terminal while the bar is up: the terminal echoes ^C, sumpool stops,
    // clears its bar, and the shell prompt comes back on a clean screen.
    tmux.keys(&["clear", "Enter"]);
    let command = format!("sleep 30 | {} hash t - > out2.txt", bin.display());
    tmux.keys(&[&command, "Enter"]);
    tmux.wait_for(has_bar, "progress bar");
    tmux.keys(&["C-c"]);
    let after = tmux.wait_for(|s| s.matches("PROMPT$").count() >= 2, "prompt after Ctrl-C");
    assert!(
        !has_bar(&after),
        "a stale bar is left after Ctrl-C:\n{after}"
    );
    let out = std::fs::read(dir.path().join("out2.txt")).unwrap();
    assert!(
        out.is_empty() || out.ends_with(b"\n"),
        "half a line in the output"
    );
}
