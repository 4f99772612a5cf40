//! Process trees: a command's processes end with it.
//!
//! Every command and terminal runs with `SY_EXEC=<tag>` in its environment
//! (the engine has no "kill exec" call). A tag starts with the host process's
//! boot id, so after a restart the host tells its own commands from the ones
//! it lost. A command runs under [`WRAP`], which starts `timeout` in its own
//! process group and, when the command ends, kills that group (one `kill(2)`:
//! a fork bomb cannot outrun it) and then sweeps whatever still carries the
//! tag (processes that left the group with `setsid`), repeating until none is
//! left — unless the command asked to detach. The host kills by tag on a
//! timeout, the output cap, a client that left, a closed terminal, and on
//! re-attaching after a restart (every tagged process not started by this
//! boot and not detached).

use super::Sandboxes;
use super::driver::ExecSpec;
use futures_util::StreamExt;
use std::sync::LazyLock;
use std::time::Duration;

/// The environment variable marking a detached command's processes.
pub const DETACH_VAR: &str = "SY_DETACH";

/// Kills every process whose environment carries `SY_EXEC=$t` except the
/// process `$me`, round after round until two rounds in a row kill none
/// (bounded): a process in the middle of `execve` shows an empty environment
/// for a moment, so one empty round does not prove the tree gone. Its `grep`
/// runs with another tag; its subshell, matched, has exited by the time its
/// list is read, so killing it fails and does not count.
const SWEEP_LOOP: &str = r#"i=0; z=0; while [ $i -lt 50 ]; do i=$((i+1)); n=0; for f in $(SY_EXEC=- grep -lzx "SY_EXEC=$t" /proc/[0-9]*/environ 2>/dev/null); do p=${f#/proc/}; p=${p%/environ}; [ "$p" = "$me" ] && continue; kill -KILL "$p" 2>/dev/null && n=1; done; if [ $n = 0 ]; then z=$((z+1)); [ $z -ge 2 ] && break; else z=0; fi; done"#;

/// [`SWEEP_LOOP`] as a script of its own: `sh -c SWEEP sy TAG`.
static SWEEP: LazyLock<String> = LazyLock::new(|| format!("t=$1; me=0; {SWEEP_LOOP}; true"));

/// Kills, round after round, every tagged process whose tag does not start
/// with `$1` (this boot) and that is not detached: commands a previous host
/// process lost.
const SWEEP_LOST: &str = r#"b=$1; i=0; while [ $i -lt 50 ]; do i=$((i+1)); n=0; for f in $(grep -lz '^SY_EXEC=' /proc/[0-9]*/environ 2>/dev/null); do grep -qz -e "^SY_EXEC=$b" -e '^SY_EXEC=-$' "$f" 2>/dev/null && continue; grep -qzx 'SY_DETACH=1' "$f" 2>/dev/null && continue; p=${f#/proc/}; kill -KILL "${p%/environ}" 2>/dev/null && n=1; done; [ $n = 0 ] && break; done; true"#;

/// The command wrapper (`sh -c WRAP sy TIMEOUT DETACH ARGV...`): make the
/// command the kernel's first choice when memory runs out (raising one's own
/// `oom_score_adj` needs no privilege, so PID 1 survives a hog), run it under
/// `timeout` in its own process group with the original standard input, and
/// when it ends kill the group and sweep its own tag (unless DETACH is 1).
static WRAP: LazyLock<String> = LazyLock::new(|| {
    format!(
        concat!(
            r#"echo 1000 > /proc/self/oom_score_adj; t=$1; d=$2; shift 2; "#,
            r#"exec 3<&0; timeout -k 2 "$t" "$@" 0<&3 3<&- & p=$!; exec 3<&- 0</dev/null; "#,
            r#"wait $p; r=$?; if [ "$d" != 1 ]; then kill -KILL -$p 2>/dev/null; "#,
            r#"t=$SY_EXEC; me=$$; {}; fi; exit $r"#
        ),
        SWEEP_LOOP
    )
});

/// `argv` wrapped by [`WRAP`] with its deadline and whether it detaches.
pub fn wrap(timeout_secs: u64, detach: bool, argv: Vec<String>) -> Vec<String> {
    let mut full = vec![
        "sh".into(),
        "-c".into(),
        WRAP.clone(),
        "sy".into(),
        timeout_secs.to_string(),
        if detach { "1" } else { "0" }.into(),
    ];
    full.extend(argv);
    full
}

impl Sandboxes {
    /// A new kill tag (this boot's id, then a unique part).
    pub(super) fn new_tag(&self) -> String {
        format!("{}{}", self.boot, uuid::Uuid::now_v7().simple())
    }

    /// Kill every process of the command tagged `tag` (retried while the
    /// container cannot start the killer, e.g. at its process limit).
    pub(super) async fn kill(&self, container: &str, tag: &str) {
        self.sweep(container, &SWEEP, &[tag]).await;
    }

    /// Kill the commands of `container` that an earlier host process lost.
    pub(super) async fn kill_lost(&self, container: &str) {
        self.sweep(container, SWEEP_LOST, &[&self.boot]).await;
    }

    async fn sweep(&self, container: &str, script: &str, args: &[&str]) {
        let mut argv = vec!["sh".into(), "-c".into(), script.into(), "sy".into()];
        argv.extend(args.iter().map(|a| a.to_string()));
        let spec = ExecSpec {
            argv,
            env: vec!["SY_EXEC=-".into()],
            workdir: "/".into(),
            ..ExecSpec::default()
        };
        for attempt in 0..20u32 {
            match self.driver.exec(container, &spec).await {
                Ok(mut s) => {
                    while s.output.next().await.is_some() {}
                    return;
                }
                Err(e) if attempt == 19 => {
                    tracing::warn!(error = %e, container, "sandboxes: cannot kill a command's processes");
                }
                Err(super::DriverError::NotFound(_) | super::DriverError::NotRunning(_)) => return,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt + 1))).await
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(argv: &[String], tag: &str) -> (i32, String) {
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .env("SY_EXEC", tag)
            .output()
            .expect("sh");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn alive(pid: &str) -> bool {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
    }

    #[test]
    fn leftovers_die_with_the_command_unless_detached() {
        let tag = format!("test{}", uuid::Uuid::now_v7().simple());
        let cmd = |detach| {
            wrap(
                10,
                detach,
                vec![
                    "sh".into(),
                    "-c".into(),
                    "sleep 100 >/dev/null 2>&1 & echo $!; setsid sleep 100 >/dev/null 2>&1 & echo $!; exit 3"
                        .into(),
                ],
            )
        };
        let (code, out) = sh(&cmd(false), &tag);
        assert_eq!(code, 3);
        std::thread::sleep(Duration::from_millis(100));
        for pid in out.split_whitespace() {
            assert!(!alive(pid), "background process {pid} was killed");
        }
        let (_, out) = sh(&cmd(true), &tag);
        for pid in out.split_whitespace() {
            assert!(
                alive(pid),
                "a detached command keeps its background ({pid})"
            );
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
}
