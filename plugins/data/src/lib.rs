//! `data`: everyday data tools for agents: jq queries over JSON, JSON formatting,
//! regex extract and replace, text diffs, hashing and base64.

mod jq;

use base64::Engine as _;
use regex::RegexBuilder;
use sha2::Digest as _;
use switchyard_plugin_sdk::prelude::*;

/// Largest compiled regex (bytes of automaton); guards against pathological patterns.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

#[derive(Deserialize, JsonSchema)]
struct JsonQuery {
    /// The JSON document to query (any JSON value).
    input: Value,
    /// A jq filter, e.g. `.items[] | select(.price > 10) | .name`.
    filter: String,
}

#[derive(Deserialize, JsonSchema)]
struct JsonFormat {
    /// JSON text to reformat.
    text: String,
    /// Pretty-print with two-space indentation (default) or compact.
    #[serde(default = "yes")]
    pretty: bool,
    /// Sort object keys.
    #[serde(default)]
    sort_keys: bool,
}

#[derive(Deserialize, JsonSchema)]
struct RegexExtract {
    /// A regular expression (Rust `regex` syntax; no look-around or backreferences).
    pattern: String,
    /// The text to search.
    text: String,
    /// Return every match (default) or only the first.
    #[serde(default = "yes")]
    all: bool,
    /// Case-insensitive matching.
    #[serde(default)]
    ignore_case: bool,
}

#[derive(Deserialize, JsonSchema)]
struct RegexReplace {
    /// A regular expression.
    pattern: String,
    /// The text to change.
    text: String,
    /// Replacement; `$1` or `${name}` insert capture groups.
    replacement: String,
    /// Replace every match (default) or only the first.
    #[serde(default = "yes")]
    all: bool,
}

#[derive(Deserialize, JsonSchema)]
struct TextDiff {
    /// The original text.
    old: String,
    /// The changed text.
    new: String,
    /// Lines of context around each change.
    #[serde(default = "three")]
    context: usize,
}

#[derive(Deserialize, JsonSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Algorithm {
    Sha256,
    Sha512,
    Sha1,
    Md5,
}

#[derive(Deserialize, JsonSchema)]
struct Hash {
    /// Text to hash (UTF-8).
    text: String,
    /// Hash function.
    #[serde(default = "sha256")]
    algorithm: Algorithm,
}

#[derive(Deserialize, JsonSchema)]
struct Encode {
    /// Text to encode (UTF-8).
    text: String,
    /// Use the URL-safe alphabet without padding.
    #[serde(default)]
    url_safe: bool,
}

#[derive(Deserialize, JsonSchema)]
struct Decode {
    /// Base64 to decode (standard or URL-safe alphabet, padding optional).
    data: String,
}

fn yes() -> bool {
    true
}
fn three() -> usize {
    3
}
fn sha256() -> Algorithm {
    Algorithm::Sha256
}

struct Data;

impl ToolPlugin for Data {
    fn tools() -> Tools {
        Tools::new()
            .with(
                Tool::new(
                    "json_query",
                    "Run a jq filter over a JSON document and return every result",
                    json_query,
                )
                .read_only()
                .idempotent(),
            )
            .with(
                Tool::new(
                    "json_format",
                    "Validate and pretty-print (or compact) JSON text",
                    json_format,
                )
                .read_only()
                .idempotent(),
            )
            .with(
                Tool::new(
                    "regex_extract",
                    "Find regex matches in text, with capture groups",
                    regex_extract,
                )
                .read_only()
                .idempotent(),
            )
            .with(
                Tool::new(
                    "regex_replace",
                    "Replace regex matches in text",
                    regex_replace,
                )
                .read_only()
                .idempotent(),
            )
            .with(
                Tool::new(
                    "text_diff",
                    "Unified diff between two texts, with change counts",
                    text_diff,
                )
                .read_only()
                .idempotent(),
            )
            .with(
                Tool::new(
                    "hash",
                    "Hash text with SHA-256, SHA-512, SHA-1 or MD5 (hex)",
                    hash,
                )
                .read_only()
                .idempotent(),
            )
            .with(
                Tool::new("base64_encode", "Encode text as base64", base64_encode)
                    .read_only()
                    .idempotent(),
            )
            .with(
                Tool::new(
                    "base64_decode",
                    "Decode base64 to text (or report binary data)",
                    base64_decode,
                )
                .read_only()
                .idempotent(),
            )
    }
}

export_tools!(Data);

fn json_query(a: JsonQuery, _: &Context) -> Result<Output> {
    let results = jq::run(&a.filter, a.input)?;
    Output::json(&json!({ "results": results }))
}

fn json_format(a: JsonFormat, _: &Context) -> Result<Output> {
    let mut value: Value = serde_json::from_str(&a.text)
        .map_err(|e| Error::invalid_input(format!("not valid JSON: {e}")))?;
    if a.sort_keys {
        sort_keys(&mut value);
    }
    let text = if a.pretty {
        serde_json::to_string_pretty(&value)?
    } else {
        serde_json::to_string(&value)?
    };
    Ok(Output::text(text))
}

fn sort_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = std::mem::take(map).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, mut v) in entries {
                sort_keys(&mut v);
                map.insert(k, v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

fn regex(pattern: &str, ignore_case: bool) -> Result<regex::Regex> {
    RegexBuilder::new(pattern)
        .case_insensitive(ignore_case)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| Error::invalid_input(format!("invalid pattern: {e}")))
}

fn regex_extract(a: RegexExtract, _: &Context) -> Result<Output> {
    let re = regex(&a.pattern, a.ignore_case)?;
    let names: Vec<Option<&str>> = re.capture_names().collect();
    let limit = if a.all { 10_000 } else { 1 };
    let matches: Vec<Value> = re
        .captures_iter(&a.text)
        .take(limit)
        .map(|caps| {
            let whole = caps.get(0).map(|m| (m.as_str(), m.start(), m.end())).unwrap_or_default();
            let groups: Vec<Value> = (1..caps.len())
                .map(|i| {
                    json!({ "index": i, "name": names.get(i).copied().flatten(), "text": caps.get(i).map(|m| m.as_str()) })
                })
                .collect();
            json!({ "text": whole.0, "start": whole.1, "end": whole.2, "groups": groups })
        })
        .collect();
    Output::json(&json!({ "count": matches.len(), "matches": matches }))
}

fn regex_replace(a: RegexReplace, _: &Context) -> Result<Output> {
    let re = regex(&a.pattern, false)?;
    let count = if a.all {
        re.find_iter(&a.text).count()
    } else {
        usize::from(re.is_match(&a.text))
    };
    let text = if a.all {
        re.replace_all(&a.text, a.replacement.as_str())
    } else {
        re.replace(&a.text, a.replacement.as_str())
    };
    Output::json(&json!({ "replacements": count, "text": text }))
}

fn text_diff(a: TextDiff, _: &Context) -> Result<Output> {
    let diff = similar::TextDiff::from_lines(&a.old, &a.new);
    let unified = diff
        .unified_diff()
        .context_radius(a.context)
        .header("old", "new")
        .to_string();
    let (mut added, mut removed) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    let structured = json!({ "identical": added + removed == 0, "added_lines": added, "removed_lines": removed, "diff": unified });
    Ok(Output::text(if unified.is_empty() {
        "The texts are identical.".to_string()
    } else {
        unified
    })
    .with(Content::Json(structured.to_string())))
}

fn hash(a: Hash, _: &Context) -> Result<Output> {
    let bytes = a.text.as_bytes();
    let digest = match a.algorithm {
        Algorithm::Sha256 => hex::encode(sha2::Sha256::digest(bytes)),
        Algorithm::Sha512 => hex::encode(sha2::Sha512::digest(bytes)),
        Algorithm::Sha1 => hex::encode(sha1::Sha1::digest(bytes)),
        Algorithm::Md5 => hex::encode(md5::Md5::digest(bytes)),
    };
    Ok(Output::text(digest))
}

fn base64_encode(a: Encode, _: &Context) -> Result<Output> {
    let engine = if a.url_safe {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
    } else {
        base64::engine::general_purpose::STANDARD
    };
    Ok(Output::text(engine.encode(a.text.as_bytes())))
}

fn base64_decode(a: Decode, _: &Context) -> Result<Output> {
    let cleaned: String = a.data.chars().filter(|c| !c.is_whitespace()).collect();
    let normalized = cleaned.replace('-', "+").replace('_', "/");
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(normalized.trim_end_matches('='))
        .map_err(|e| Error::invalid_input(format!("not valid base64: {e}")))?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Output::text(text)),
        Err(e) => {
            let bytes = e.into_bytes();
            Ok(
                Output::text(format!("{} bytes of binary data (not UTF-8)", bytes.len())).with(
                    Content::Bytes(switchyard_plugin_sdk::Blob {
                        mime_type: "application/octet-stream".into(),
                        data: bytes,
                    }),
                ),
            )
        }
    }
}
