//! Standby shells: in every running sandbox container one shell already
//! started by the engine waits on its standard input for the next command,
//! so that command skips the engine's exec start (the runtime's `exec`, most
//! of a command's latency). The warm pool's containers get theirs before they
//! are handed out; a finished command leaves a new one being prepared.
//!
//! The shell reads one line, a script the host wrote with every word
//! single-quoted (newlines as `$N`), and `exec`s it without forking: what runs is the same wrapped command the
//! engine would have started, with the standby's `SY_EXEC` tag, so killing,
//! deadlines, the output cap and exit codes work unchanged. What follows the
//! line on its input is the command's standard input.

use super::driver::{ExecSession, ExecSpec};
use super::{Sandboxes, files};
use futures_util::{FutureExt, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;

/// Reads one line and runs it in place of itself (no fork: a sandbox at its
/// process limit runs it as it would an engine exec); exits quietly when its
/// input closes first.
const SHELL: &str = "N='\n'; IFS= read -r l || exit 0; eval \"$l\"";
/// Scripts longer than this go through a normal exec (the shell reads its
/// line a byte at a time).
const MAX_SCRIPT: usize = 64 << 10;

/// A shell waiting in one container.
pub(super) struct Standby {
    /// The `SY_EXEC` tag in its environment.
    pub tag: String,
    /// Its engine exec session.
    pub session: ExecSession,
}

enum Slot {
    Preparing,
    Ready(Standby),
}

/// The standby shells by container id.
#[derive(Default)]
pub(super) struct Standbys {
    slots: Mutex<HashMap<String, Slot>>,
}

impl Standbys {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claim the container's slot for preparing; false when it has one.
    fn claim(&self, container: &str) -> bool {
        let mut slots = self.slots();
        if slots.contains_key(container) {
            return false;
        }
        slots.insert(container.to_string(), Slot::Preparing);
        true
    }

    fn fill(&self, container: &str, standby: Option<Standby>) {
        let mut slots = self.slots();
        match standby {
            // Forgotten while preparing (the container went): drop it.
            Some(s) if matches!(slots.get(container), Some(Slot::Preparing)) => {
                slots.insert(container.to_string(), Slot::Ready(s));
            }
            _ => {
                if matches!(slots.get(container), Some(Slot::Preparing)) {
                    slots.remove(container);
                }
            }
        }
    }

    fn take(&self, container: &str) -> Option<Standby> {
        let mut slots = self.slots();
        match slots.remove(container) {
            Some(Slot::Ready(s)) => Some(s),
            Some(Slot::Preparing) => {
                slots.insert(container.to_string(), Slot::Preparing);
                None
            }
            None => None,
        }
    }

    /// Drop the container's shell (its input closes and it exits).
    pub fn forget(&self, container: &str) {
        self.slots().remove(container);
    }

    /// How many shells wait.
    pub fn ready(&self) -> usize {
        self.slots()
            .values()
            .filter(|s| matches!(s, Slot::Ready(_)))
            .count()
    }
}

/// `word` quoted for the shell, on one line (a newline is `$N`).
fn quote(word: &str) -> String {
    let inner = word.replace('\'', r"'\''").replace('\n', r#"'"$N"'"#);
    format!("'{inner}'")
}

/// The script a standby runs for `spec`: enter the directory, then become
/// `env` with the extra variables and the wrapped command.
fn script(spec: &ExecSpec) -> String {
    let dir = quote(&spec.workdir);
    let mut s = format!(
        "cd -- {dir} 2>/dev/null || {{ echo \"switchyard: the directory \"{dir}\" does not exist\" >&2; exit 126; }}; exec env --"
    );
    // The command keeps the standby's own tag, so it can be killed from the start.
    let env = spec.env.iter().filter(|e| !e.starts_with("SY_EXEC="));
    for word in env.chain(&spec.argv) {
        s.push(' ');
        s.push_str(&quote(word));
    }
    s
}

impl Sandboxes {
    /// Start a standby shell in `container` and wait until it is ready.
    pub(super) async fn prepare_standby(&self, container: &str) {
        if !self.config.standby || !self.standbys.claim(container) {
            return;
        }
        let tag = self.new_tag();
        let spec = ExecSpec {
            argv: vec!["sh".into(), "-c".into(), SHELL.into()],
            env: vec![format!("SY_EXEC={tag}")],
            workdir: files::WORKSPACE.into(),
            tty: false,
            stdin: true,
        };
        let standby = match self.driver.exec(container, &spec).await {
            Ok(session) => Some(Standby { tag, session }),
            Err(e) => {
                tracing::debug!(error = %e, container, "sandboxes: no standby shell");
                None
            }
        };
        self.standbys.fill(container, standby);
    }

    /// Start a standby shell in `container` in the background.
    pub(super) fn spawn_standby(self: &Arc<Self>, container: &str) {
        if !self.config.standby {
            return;
        }
        let (this, container) = (self.clone(), container.to_string());
        tokio::spawn(async move { this.prepare_standby(&container).await });
    }

    /// Run `spec` on the container's standby shell, when it has a live one.
    pub(super) async fn run_on_standby(
        &self,
        container: &str,
        spec: &ExecSpec,
    ) -> Option<(String, ExecSession)> {
        let script = script(spec);
        if script.len() > MAX_SCRIPT {
            return None;
        }
        let mut standby = self.standbys.take(container)?;
        // A shell whose output already ended (its container died) is spent.
        if standby.session.output.next().now_or_never().is_some() {
            return None;
        }
        if !matches!(self.driver.exec_exit(&standby.session.id).await, Ok(None)) {
            return None;
        }
        let mut line = script;
        line.push('\n');
        let input = standby.session.input.as_mut()?;
        input.write_all(line.as_bytes()).await.ok()?;
        input.flush().await.ok()?;
        Some((standby.tag, standby.session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// Feed `spec` to a real standby shell (the host's `sh`) with `stdin` after the line.
    fn run(spec: &ExecSpec, stdin: &[u8]) -> (i32, String, String) {
        let mut child = Command::new("sh")
            .args(["-c", SHELL])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sh");
        let mut input = child.stdin.take().expect("stdin");
        let line = script(spec);
        assert!(!line.contains('\n'), "{line}");
        input
            .write_all(format!("{line}\n").as_bytes())
            .expect("line");
        input.write_all(stdin).expect("stdin");
        drop(input);
        let out = child.wait_with_output().expect("output");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn a_standby_runs_the_exact_words() {
        let dir = std::env::temp_dir();
        let tricky = "it's \"quoted\" $HOME `id` \\ \n next; line *";
        let spec = ExecSpec {
            argv: vec![
                "sh".into(),
                "-c".into(),
                r#"printf '%s|' "$@" "$V"; pwd; cat; exit 7"#.into(),
                "sy".into(),
                tricky.into(),
                String::new(),
            ],
            env: vec![format!("V={tricky}"), "SY_EXEC=ignored".into()],
            workdir: dir.to_string_lossy().into_owned(),
            tty: false,
            stdin: true,
        };
        let (code, out, err) = run(&spec, b"the rest of the input\n");
        assert_eq!(code, 7, "{err}");
        let pwd = std::fs::canonicalize(&dir).expect("dir");
        assert_eq!(
            out,
            format!(
                "{tricky}||{tricky}|{}\nthe rest of the input\n",
                pwd.display()
            )
        );
    }

    #[test]
    fn a_missing_directory_is_exit_126_with_a_message() {
        let spec = ExecSpec {
            argv: vec!["true".into()],
            workdir: "/no/such/dir'x".into(),
            ..ExecSpec::default()
        };
        let (code, _, err) = run(&spec, b"");
        assert_eq!(code, 126);
        assert!(
            err.contains("the directory /no/such/dir'x does not exist"),
            "{err}"
        );
    }

    #[test]
    fn the_command_keeps_the_standby_tag() {
        let spec = ExecSpec {
            argv: vec!["env".into()],
            env: vec!["SY_EXEC=new".into()],
            workdir: "/".into(),
            ..ExecSpec::default()
        };
        assert!(!script(&spec).contains("SY_EXEC"));
    }
}
