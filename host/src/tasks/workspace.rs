//! What a task puts into its session's sandbox before work starts there: the
//! folders of the session's enabled skills, at `/workspace/skills/NAME/`, so
//! their scripts run in the sandbox.

use super::Tasks;
use crate::skills::Skill;
use crate::store::{SessionRow, TaskRow};
use bytes::Bytes;

/// Where enabled skills are copied in a sandbox.
pub const SKILLS_DIR: &str = "/workspace/skills";

impl Tasks {
    /// The session's enabled skills its owner may use.
    pub(super) async fn session_skills(&self, session: &SessionRow) -> Vec<Skill> {
        let names: Vec<String> = serde_json::from_str(&session.skills).unwrap_or_default();
        if names.is_empty() {
            return Vec::new();
        }
        let Ok(owner) = self.store.user(&session.owner_id).await else {
            return Vec::new();
        };
        let caller = crate::tools::Caller {
            user_id: owner.id.clone(),
            username: owner.username.clone(),
            admin: owner.role == crate::store::Role::Admin,
        };
        self.skills.enabled(&caller, &names).await
    }

    /// Copy `skills` into sandbox `sandbox` at [`SKILLS_DIR`]; each skill that
    /// cannot be copied is reported as a `log` event on `task` and skipped (the
    /// task goes on without it).
    pub(super) async fn put_skills(&self, task: &TaskRow, sandbox: &str, skills: &[Skill]) {
        let owner = crate::sandbox::Caller {
            user_id: task.owner_id.clone(),
            admin: false,
        };
        for skill in skills {
            let copied = async {
                let files = self.skills.folder(skill).await.map_err(|e| e.to_string())?;
                for (path, content) in files {
                    let len = content.len() as u64;
                    let data =
                        futures_util::stream::once(
                            async move { Ok::<_, String>(Bytes::from(content)) },
                        );
                    self.sandboxes
                        .write_file(
                            &owner,
                            sandbox,
                            &format!("{SKILLS_DIR}/{}/{path}", skill.name),
                            Some(len),
                            Box::pin(data),
                        )
                        .await
                        .map_err(|e| format!("{path}: {e}"))?;
                }
                Ok::<_, String>(())
            }
            .await;
            let message = match copied {
                Ok(()) => serde_json::json!({
                    "message": format!("skill `{}` copied to {SKILLS_DIR}/{}/", skill.name, skill.name),
                }),
                Err(e) => {
                    tracing::warn!(task = %task.id, skill = %skill.name, error = %e, "cannot copy a skill into the sandbox");
                    serde_json::json!({
                        "message": format!("skill `{}` could not be copied into the sandbox: {e}", skill.name),
                    })
                }
            };
            let _ = self.emit(&task.id, &[("log", message)]).await;
        }
    }
}
