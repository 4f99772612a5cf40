//! `notes`: long-term memory for agents. Notes live in the plugin's own key-value
//! space (`note:<id>`), so they survive restarts and stay private to the plugin.

use switchyard_plugin_sdk::prelude::*;

/// Largest note text (bytes).
const MAX_TEXT: usize = 64 * 1024;
/// Most notes kept.
const MAX_NOTES: usize = 1000;

/// A stored note.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Note {
    /// Stable id.
    pub id: String,
    /// The remembered text.
    pub text: String,
    /// Lower-case tags.
    pub tags: Vec<String>,
    /// When it was written (ms since the Unix epoch).
    pub created_ms: u64,
}

#[derive(Deserialize, JsonSchema)]
struct Remember {
    /// What to remember.
    text: String,
    /// Optional tags to group notes.
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize, JsonSchema)]
struct Recall {
    /// Words to look for (all must appear in the text or tags, case-insensitive).
    query: String,
    /// Most notes to return.
    #[serde(default = "ten")]
    limit: usize,
}

#[derive(Deserialize, JsonSchema)]
struct List {
    /// Only notes with this tag.
    #[serde(default)]
    tag: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
struct Forget {
    /// The id of the note to delete.
    id: String,
}

fn ten() -> usize {
    10
}

struct Notes;

impl ToolPlugin for Notes {
    fn tools() -> Tools {
        Tools::new()
            .with(
                Tool::new(
                    "remember",
                    "Store a note for later (returns its id)",
                    remember,
                )
                .output::<Note>(),
            )
            .with(
                Tool::new(
                    "recall",
                    "Find notes whose text or tags contain all the query words",
                    recall,
                )
                .read_only(),
            )
            .with(
                Tool::new("list", "List notes, newest first, optionally by tag", list).read_only(),
            )
            .with(
                Tool::new("forget", "Delete a note by id", forget)
                    .destructive()
                    .idempotent(),
            )
    }
}

export_tools!(Notes);

fn remember(a: Remember, _: &Context) -> Result<Output> {
    let text = a.text.trim().to_string();
    if text.is_empty() || text.len() > MAX_TEXT {
        return Err(Error::invalid_input(format!(
            "text must be 1-{MAX_TEXT} bytes"
        )));
    }
    if kv::list("note:")?.len() >= MAX_NOTES {
        return Err(Error::failed(format!(
            "already {MAX_NOTES} notes: forget some first"
        )));
    }
    let seq: u64 = kv::get_json("seq")?.unwrap_or(0) + 1;
    kv::set_json("seq", &seq)?;
    let note = Note {
        id: format!("n{seq}"),
        text,
        tags: normalize_tags(a.tags),
        created_ms: now_ms(),
    };
    kv::set_json(&format!("note:{}", note.id), &note)?;
    Output::json(&note)
}

fn all_notes() -> Result<Vec<Note>> {
    let mut notes = Vec::new();
    for key in kv::list("note:")? {
        if let Some(note) = kv::get_json::<Note>(&key)? {
            notes.push(note);
        }
    }
    notes.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(b.id.cmp(&a.id)));
    Ok(notes)
}

fn recall(a: Recall, _: &Context) -> Result<Output> {
    let found = search(&all_notes()?, &a.query, a.limit.clamp(1, 100));
    Output::json(&json!({ "count": found.len(), "notes": found }))
}

fn list(a: List, _: &Context) -> Result<Output> {
    let tag = a.tag.map(|t| t.to_lowercase());
    let notes: Vec<Note> = all_notes()?
        .into_iter()
        .filter(|n| tag.as_ref().is_none_or(|t| n.tags.contains(t)))
        .collect();
    Output::json(&json!({ "count": notes.len(), "notes": notes }))
}

fn forget(a: Forget, _: &Context) -> Result<Output> {
    if kv::delete(&format!("note:{}", a.id))? {
        Ok(Output::text(format!("Forgot {}", a.id)))
    } else {
        Err(Error::not_found(format!("no note with id `{}`", a.id)))
    }
}

fn now_ms() -> u64 {
    switchyard_plugin_sdk::now_ms()
}

/// Lower-case, trimmed, de-duplicated tags.
pub fn normalize_tags(tags: Vec<String>) -> Vec<String> {
    let mut tags: Vec<String> = tags
        .into_iter()
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

/// Notes containing every query word (in text or tags), up to `limit`.
pub fn search(notes: &[Note], query: &str, limit: usize) -> Vec<Note> {
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    notes
        .iter()
        .filter(|n| {
            let haystack = format!("{} {}", n.text.to_lowercase(), n.tags.join(" "));
            words.iter().all(|w| haystack.contains(w.as_str()))
        })
        .take(limit)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{Note, normalize_tags, search};

    #[test]
    fn search_needs_every_word() {
        let note = |id: &str, text: &str, tags: &[&str]| Note {
            id: id.into(),
            text: text.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            created_ms: 0,
        };
        let notes = vec![
            note("n1", "Deploy on Fridays", &["ops"]),
            note("n2", "Coffee order", &["team"]),
        ];
        assert_eq!(search(&notes, "deploy OPS", 10).len(), 1);
        assert!(search(&notes, "deploy coffee", 10).is_empty());
        assert_eq!(
            normalize_tags(vec![" B".into(), "a".into(), "b".into(), "".into()]),
            vec!["a", "b"]
        );
    }
}
