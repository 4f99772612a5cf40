//! Files in a sandbox's workspace: paths checked on the host (no `..`, nothing
//! outside `/workspace`) and again inside the container after resolving
//! symlinks, so a link pointing out of the workspace is refused. Content moves
//! byte-exactly over the command streams, never through a shell's text.

use super::driver::{Chunk, ExecSpec};
use super::{Caller, SandboxError, Sandboxes};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde::Serialize;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// The workspace mount point.
pub const WORKSPACE: &str = "/workspace";
/// Where agent work leaves its results.
pub const OUTPUT_DIR: &str = "/workspace/output";
/// Most entries one listing returns.
pub const MAX_ENTRIES: usize = 10_000;

/// Resolve the real path, refuse it outside the workspace (exit 4), then act.
const RESOLVE: &str = r#"echo 1000 > /proc/self/oom_score_adj
case "$2" in e) p=$(realpath -e -- "$1" 2>/dev/null) || { echo "no such file or directory" >&2; exit 3; } ;; *) p=$(realpath -m -- "$1") || exit 3 ;; esac
case "$p" in /workspace|/workspace/*) ;; *) echo "the path resolves outside /workspace" >&2; exit 4 ;; esac
"#;
const READ: &str = r#"[ -f "$p" ] || { echo "not a regular file" >&2; exit 5; }
s=$(stat -c %s -- "$p"); [ "$s" -le "$3" ] || { echo "$s" >&2; exit 6; }
echo "$s"; exec cat -- "$p""#;
const WRITE: &str = r#"[ "$p" != /workspace ] && [ ! -d "$p" ] || { echo "is a directory" >&2; exit 5; }
mkdir -p -- "$(dirname -- "$p")" || exit 7
t="$(dirname -- "$p")/.sy-upload.$4"
cat > "$t" || { rm -f -- "$t"; exit 7; }
[ "$3" = - ] || [ "$(stat -c %s -- "$t")" = "$3" ] || { rm -f -- "$t"; echo "the upload was cut short" >&2; exit 8; }
mv -f -- "$t" "$p" || { rm -f -- "$t"; exit 7; }"#;
const LIST: &str = r#"[ -d "$p" ] || { echo "not a directory" >&2; exit 5; }
find "$p" -mindepth 1 -maxdepth "$3" -printf '%y\t%s\t%T@\t%P\0' | head -z -n "$4""#;

/// One entry of a directory listing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FileEntry {
    /// Path relative to the listed directory.
    pub path: String,
    /// `file`, `dir`, `link` or `other`.
    pub kind: &'static str,
    /// Size (bytes).
    pub size: u64,
    /// Last modification (ms since the epoch).
    pub modified_ms: i64,
}

/// The normalized absolute path for `path` (relative to the workspace, or
/// absolute inside it); `..`, NUL and paths outside the workspace are refused.
pub fn workspace_path(path: &str) -> Result<String, SandboxError> {
    let bad = |why: &str| Err(SandboxError::Invalid(format!("path {why}")));
    if path.chars().nth(4096).is_some() {
        return bad("is longer than 4096 characters");
    }
    if path.contains('\0') {
        return bad("contains NUL");
    }
    let rest = match path.strip_prefix(WORKSPACE) {
        Some("") => "",
        Some(r) if r.starts_with('/') => r,
        _ if path.starts_with('/') => return bad("must be inside /workspace"),
        _ => path,
    };
    let mut parts = Vec::new();
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => return bad("must not contain `..`"),
            p if p.len() > 255 => return bad("has a name longer than 255 bytes"),
            p => parts.push(p),
        }
    }
    Ok(if parts.is_empty() {
        WORKSPACE.to_string()
    } else {
        format!("{WORKSPACE}/{}", parts.join("/"))
    })
}

fn script_error(code: Option<i64>, stderr: &[u8], path: &str) -> SandboxError {
    let msg = String::from_utf8_lossy(stderr).trim().to_string();
    if msg.contains("Cannot fork") || msg.contains("Resource temporarily unavailable") {
        return SandboxError::Conflict(
            "the sandbox is at its process limit (pids): let its commands finish, or create it with a higher `pids`".into(),
        );
    }
    if code == Some(137) {
        return SandboxError::Conflict(
            "the sandbox ran out of memory for the file operation: let its commands finish, or create it with more `memory_mb`".into(),
        );
    }
    if msg.contains("No space left") || msg.contains("Disk quota exceeded") {
        return SandboxError::Conflict(format!("{path}: the workspace is full"));
    }
    match code {
        Some(3) => SandboxError::NotFound(format!("{path}: no such file or directory")),
        Some(4) => SandboxError::Invalid(format!("{path}: {msg}")),
        Some(5) => SandboxError::Invalid(format!("{path}: {msg}")),
        _ => SandboxError::Failed(format!("{path}: {msg} (exit {code:?})")),
    }
}

impl Sandboxes {
    async fn file_op(
        &self,
        caller: &Caller,
        id: &str,
        script: &str,
        args: &[&str],
        tag: Option<&str>,
        stdin: bool,
    ) -> Result<(String, super::driver::ExecSession), SandboxError> {
        let row = self.row(caller, id).await?;
        let mut argv = vec![
            "sh".into(),
            "-c".into(),
            format!("{RESOLVE}{script}"),
            "sy".into(),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        let spec = ExecSpec {
            argv,
            env: tag.map(|t| format!("SY_EXEC={t}")).into_iter().collect(),
            workdir: WORKSPACE.into(),
            stdin,
            ..ExecSpec::default()
        };
        let (container, session) = self.start_exec(&row, &spec).await?;
        if let Err(e) = self.store.touch_sandbox(&row.id).await {
            tracing::warn!(error = %e, "cannot record sandbox activity");
        }
        Ok((container, session))
    }

    /// Write `data` (`len` bytes when known) to `path`, creating parents; the
    /// file is replaced only once every byte arrived.
    pub async fn write_file(
        &self,
        caller: &Caller,
        id: &str,
        path: &str,
        len: Option<u64>,
        mut data: BoxStream<'static, Result<Bytes, String>>,
    ) -> Result<u64, SandboxError> {
        let path = workspace_path(path)?;
        let max = self.config.max_file_bytes;
        if let Some(len) = len.filter(|l| *l > max) {
            return Err(SandboxError::TooLarge(format!(
                "files are at most {max} bytes (this one has {len})"
            )));
        }
        let tag = uuid::Uuid::now_v7().simple().to_string();
        let declared = len.map_or("-".to_string(), |l| l.to_string());
        let (container, mut session) = self
            .file_op(
                caller,
                id,
                WRITE,
                &[&path, "m", &declared, &tag],
                Some(&tag),
                true,
            )
            .await?;
        let mut input = session
            .input
            .take()
            .ok_or_else(|| SandboxError::Failed("no input stream".into()))?;
        let limit = len.unwrap_or(max);
        let mut written = 0u64;
        let mut failure = None;
        while let Some(chunk) = data.next().await {
            match chunk {
                Ok(b) if written + b.len() as u64 <= limit => {
                    written += b.len() as u64;
                    if input.write_all(&b).await.is_err() {
                        break;
                    }
                }
                Ok(_) if len.is_none() => {
                    failure = Some(SandboxError::TooLarge(format!(
                        "files are at most {max} bytes"
                    )));
                    break;
                }
                Ok(_) => {
                    failure = Some(SandboxError::Invalid(format!(
                        "the upload is longer than its declared {limit} bytes"
                    )));
                    break;
                }
                Err(e) => {
                    failure = Some(SandboxError::Invalid(format!("reading the upload: {e}")));
                    break;
                }
            }
        }
        if let Some(e) = failure {
            // Kill the writer before its input closes, so nothing is committed.
            self.kill(&container, &tag).await;
            drop(input);
            drop(session);
            let dir = path.rsplit_once('/').map_or(WORKSPACE, |(d, _)| d);
            let cleanup = ExecSpec {
                argv: vec![
                    "rm".into(),
                    "-f".into(),
                    "--".into(),
                    format!("{dir}/.sy-upload.{tag}"),
                ],
                workdir: WORKSPACE.into(),
                ..ExecSpec::default()
            };
            if let Ok(mut s) = self.driver.exec(&container, &cleanup).await {
                while s.output.next().await.is_some() {}
            }
            return Err(e);
        }
        let _ = input.shutdown().await;
        let mut stderr = Vec::new();
        while let Some(c) = session.output.next().await {
            if let Ok(Chunk::Stderr(b)) = c {
                stderr.extend_from_slice(&b[..b.len().min(4096)]);
            }
        }
        match self.exit_code(&session.id).await {
            Some(0) => Ok(written),
            Some(8) => Err(SandboxError::Invalid(format!(
                "{path}: the upload ended after {written} bytes; nothing was written"
            ))),
            code => Err(script_error(code, &stderr, &path)),
        }
    }

    /// Open a file for reading (at most `max` bytes, else
    /// [`SandboxError::TooLarge`]): its size, then its bytes as they arrive.
    /// Dropping the receiver early stops the reader in the sandbox.
    pub async fn open_file(
        self: &Arc<Self>,
        caller: &Caller,
        id: &str,
        path: &str,
        max: u64,
    ) -> Result<FileRead, SandboxError> {
        let path = workspace_path(path)?;
        let tag = uuid::Uuid::now_v7().simple().to_string();
        let args = [path.as_str(), "e", &max.to_string()];
        let (container, mut session) = self
            .file_op(caller, id, READ, &args, Some(&tag), false)
            .await?;
        // The script prints the size on a line of its own, then the bytes.
        let (mut head, mut err) = (Vec::new(), Vec::new());
        let newline = loop {
            match session.output.next().await {
                Some(Ok(Chunk::Stdout(b))) => {
                    head.extend_from_slice(&b);
                    if let Some(i) = head.iter().position(|c| *c == b'\n') {
                        break i;
                    }
                    if head.len() > 32 {
                        return Err(SandboxError::Failed(format!("{path}: unexpected output")));
                    }
                }
                Some(Ok(Chunk::Stderr(b))) => err.extend_from_slice(&b[..b.len().min(4096)]),
                Some(Err(e)) => return Err(e.into()),
                None => {
                    return Err(match self.exit_code(&session.id).await {
                        Some(6) => SandboxError::TooLarge(format!(
                            "{path} has {} bytes, more than the {max} allowed",
                            String::from_utf8_lossy(&err).trim()
                        )),
                        code => script_error(code, &err, &path),
                    });
                }
            }
        };
        let size: u64 = std::str::from_utf8(&head[..newline])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| SandboxError::Failed(format!("{path}: unreadable size")))?;
        let first = Bytes::from(head).slice(newline + 1..);
        let (tx, bytes) = mpsc::channel(8);
        let this = self.clone();
        tokio::spawn(async move {
            let ended = pump(session, first, size, &tx, &path).await;
            if !ended {
                this.kill(&container, &tag).await;
            }
        });
        Ok(FileRead { size, bytes })
    }

    /// Read a whole file (at most `max` bytes, else [`SandboxError::TooLarge`]).
    pub async fn read_file(
        self: &Arc<Self>,
        caller: &Caller,
        id: &str,
        path: &str,
        max: u64,
    ) -> Result<Vec<u8>, SandboxError> {
        let mut file = self.open_file(caller, id, path, max).await?;
        let mut out = Vec::with_capacity(file.size as usize);
        while let Some(chunk) = file.bytes.recv().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    /// List a directory (`depth` 1 for its entries, more to recurse).
    pub async fn list_files(
        &self,
        caller: &Caller,
        id: &str,
        path: &str,
        depth: u32,
    ) -> Result<(Vec<FileEntry>, bool), SandboxError> {
        let path = workspace_path(path)?;
        let depth = depth.clamp(1, 32).to_string();
        let limit = (MAX_ENTRIES + 1).to_string();
        let (_, mut session) = self
            .file_op(caller, id, LIST, &[&path, "e", &depth, &limit], None, false)
            .await?;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(c) = session.output.next().await {
            match c {
                Ok(Chunk::Stdout(b)) => out.extend_from_slice(&b),
                Ok(Chunk::Stderr(b)) => err.extend_from_slice(&b[..b.len().min(4096)]),
                Err(e) => return Err(e.into()),
            }
        }
        match self.exit_code(&session.id).await {
            Some(0) => {}
            code => return Err(script_error(code, &err, &path)),
        }
        let mut entries: Vec<FileEntry> = out
            .split(|b| *b == 0)
            .filter(|r| !r.is_empty())
            .filter_map(parse_entry)
            .collect();
        let truncated = entries.len() > MAX_ENTRIES;
        entries.truncate(MAX_ENTRIES);
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok((entries, truncated))
    }
}

/// A file being read.
pub struct FileRead {
    /// Its size (bytes), all that `bytes` yields unless it breaks off.
    pub size: u64,
    /// Its bytes in order; an error means the read broke off.
    pub bytes: mpsc::Receiver<Result<Bytes, SandboxError>>,
}

/// Forward exactly `size` bytes of the reader's output (`first`, then the
/// rest); true when the reader ended by itself, false when it must be killed
/// (the receiver left, or the file grew while it was read).
async fn pump(
    mut session: super::driver::ExecSession,
    first: Bytes,
    size: u64,
    tx: &mpsc::Sender<Result<Bytes, SandboxError>>,
    path: &str,
) -> bool {
    let mut left = size;
    let mut next = Some(first);
    loop {
        if let Some(b) = next.take().filter(|b| !b.is_empty()) {
            let b = b.slice(..b.len().min(left as usize));
            left -= b.len() as u64;
            if tx.send(Ok(b)).await.is_err() {
                return false;
            }
        }
        match session.output.next().await {
            Some(Ok(Chunk::Stdout(b))) if left > 0 => next = Some(b),
            Some(Ok(Chunk::Stdout(_))) => return false,
            Some(Ok(Chunk::Stderr(_))) => {}
            Some(Err(e)) => {
                let _ = tx.send(Err(e.into())).await;
                return false;
            }
            None if left == 0 => return true,
            None => {
                let why = format!("{path} changed while it was read ({left} bytes short)");
                let _ = tx.send(Err(SandboxError::Failed(why))).await;
                return true;
            }
        }
    }
}

fn parse_entry(record: &[u8]) -> Option<FileEntry> {
    let text = String::from_utf8_lossy(record);
    let mut fields = text.splitn(4, '\t');
    let kind = match fields.next()? {
        "f" => "file",
        "d" => "dir",
        "l" => "link",
        _ => "other",
    };
    let size = fields.next()?.parse().ok()?;
    let modified: f64 = fields.next()?.parse().ok()?;
    Some(FileEntry {
        kind,
        size,
        modified_ms: (modified * 1000.0) as i64,
        path: fields.next()?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::workspace_path;

    #[test]
    fn paths_stay_in_the_workspace() {
        assert_eq!(workspace_path("a/b.txt").unwrap(), "/workspace/a/b.txt");
        assert_eq!(
            workspace_path("/workspace/./a//b").unwrap(),
            "/workspace/a/b"
        );
        assert_eq!(workspace_path("").unwrap(), "/workspace");
        assert_eq!(workspace_path("/workspace").unwrap(), "/workspace");
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "a/../../x",
            "/workspacex/y",
            "a\0b",
        ] {
            assert!(workspace_path(bad).is_err(), "{bad:?}");
        }
        assert!(workspace_path(&"a/".repeat(3000)).is_err());
    }
}
