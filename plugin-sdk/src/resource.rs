//! Resources: documents an MCP client reads by URI, fixed ones and families
//! described by a URI template such as `notes://{id}` (MCP `resources/*`).

use crate::bindings::switchyard::plugin::types::{EmbeddedResource, ResourceBody};
use crate::error::Result;
use std::collections::BTreeMap;

/// What a read returns: text or bytes.
#[derive(Debug, Clone)]
pub enum Body {
    /// UTF-8 text.
    Text(String),
    /// Binary data.
    Bytes(Vec<u8>),
}

/// The variables of a URI that matched a template (`{id}` → `"42"`).
pub type Vars = BTreeMap<String, String>;

type Read = Box<dyn Fn(&str, &Vars) -> Result<Body>>;

/// One fixed resource, or a template of many.
pub struct Resource {
    uri: String,
    template: bool,
    name: String,
    title: Option<String>,
    description: Option<String>,
    mime_type: Option<String>,
    read: Read,
}

impl Resource {
    /// The resource at `uri` (e.g. `notes://readme`), read by `read`.
    pub fn new(uri: &str, name: &str, read: impl Fn(&str) -> Result<Body> + 'static) -> Self {
        Self::build(uri, false, name, Box::new(move |uri, _| read(uri)))
    }
    /// Every URI matching `template` (RFC 6570 level 1: `{var}` matches up to the
    /// next `/`, `{+var}` anything), read by `read` with the variables.
    pub fn template(
        template: &str,
        name: &str,
        read: impl Fn(&str, &Vars) -> Result<Body> + 'static,
    ) -> Self {
        Self::build(template, true, name, Box::new(read))
    }
    fn build(uri: &str, template: bool, name: &str, read: Read) -> Self {
        Self {
            uri: uri.to_string(),
            template,
            name: name.to_string(),
            title: None,
            description: None,
            mime_type: None,
            read,
        }
    }
    /// A human-readable title.
    pub fn title(mut self, title: &str) -> Self {
        self.title = Some(title.to_string());
        self
    }
    /// What it holds.
    pub fn description(mut self, description: &str) -> Self {
        self.description = Some(description.to_string());
        self
    }
    /// Its media type, e.g. `text/markdown`.
    pub fn mime_type(mut self, mime_type: &str) -> Self {
        self.mime_type = Some(mime_type.to_string());
        self
    }
}

/// The variables of `uri` if it matches `template`.
pub fn match_template(template: &str, uri: &str) -> Option<Vars> {
    let mut vars = Vars::new();
    let (mut t, mut u) = (template, uri);
    while !t.is_empty() {
        match t.find('{') {
            Some(0) => {
                let close = t.find('}')?;
                let (reserved, var) = match t[1..close].strip_prefix('+') {
                    Some(v) => (true, v),
                    None => (false, &t[1..close]),
                };
                t = &t[close + 1..];
                let literal = &t[..t.find('{').unwrap_or(t.len())];
                let end = if literal.is_empty() {
                    u.len()
                } else {
                    u.find(literal)?
                };
                let value = &u[..end];
                if value.is_empty() || (!reserved && value.contains('/')) {
                    return None;
                }
                vars.insert(var.to_string(), value.to_string());
                u = &u[end..];
            }
            _ => {
                let literal = &t[..t.find('{').unwrap_or(t.len())];
                u = u.strip_prefix(literal)?;
                t = &t[literal.len()..];
            }
        }
    }
    u.is_empty().then_some(vars)
}

/// The resources of a plugin.
#[derive(Default)]
pub struct Resources(Vec<Resource>);

impl Resources {
    /// No resources yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Add a resource or template.
    pub fn with(mut self, resource: Resource) -> Self {
        self.0.push(resource);
        self
    }
}

/// Implement this and call [`export_resources!`](crate::export_resources) to make a resource plugin.
pub trait ResourcePlugin {
    /// The resources this plugin offers.
    fn resources() -> Resources;
}

mod export {
    use super::{Body, EmbeddedResource, ResourceBody, ResourcePlugin, Vars, match_template};
    use crate::error::{Error, Result};
    use crate::resource_world::exports::switchyard::plugin::resource::{
        ResourceSpec, ResourceTemplate,
    };

    /// The fixed resources of `P`.
    pub fn list<P: ResourcePlugin>() -> Vec<ResourceSpec> {
        P::resources()
            .0
            .into_iter()
            .filter(|r| !r.template)
            .map(|r| ResourceSpec {
                uri: r.uri,
                name: r.name,
                title: r.title,
                description: r.description,
                mime_type: r.mime_type,
            })
            .collect()
    }

    /// The templates of `P`.
    pub fn templates<P: ResourcePlugin>() -> Vec<ResourceTemplate> {
        P::resources()
            .0
            .into_iter()
            .filter(|r| r.template)
            .map(|r| ResourceTemplate {
                uri_template: r.uri,
                name: r.name,
                title: r.title,
                description: r.description,
                mime_type: r.mime_type,
            })
            .collect()
    }

    /// Read `uri` from `P`: a fixed resource first, then the first matching template.
    pub fn read<P: ResourcePlugin>(uri: &str) -> Result<Vec<EmbeddedResource>> {
        let resources = P::resources();
        let found = resources
            .0
            .iter()
            .find(|r| !r.template && r.uri == uri)
            .map(|r| (r, Vars::new()))
            .or_else(|| {
                resources
                    .0
                    .iter()
                    .filter(|r| r.template)
                    .find_map(|r| match_template(&r.uri, uri).map(|v| (r, v)))
            });
        let (resource, vars) = found
            .ok_or_else(|| Error::not_found(format!("this plugin has no resource `{uri}`")))?;
        let body = match (resource.read)(uri, &vars)? {
            Body::Text(t) => ResourceBody::Text(t),
            Body::Bytes(b) => ResourceBody::Blob(b),
        };
        Ok(vec![EmbeddedResource {
            uri: uri.to_string(),
            mime_type: resource.mime_type.clone(),
            body,
        }])
    }
}

#[doc(hidden)]
pub use export::{list as __list, read as __read, templates as __templates};

/// Export a [`ResourcePlugin`] as the component's `resource` interface.
#[macro_export]
macro_rules! export_resources {
    ($plugin:ty) => {
        struct __SwitchyardResourceExport;
        impl $crate::resource_world::exports::switchyard::plugin::resource::Guest
            for __SwitchyardResourceExport
        {
            fn list_resources() -> ::std::vec::Vec<
                $crate::resource_world::exports::switchyard::plugin::resource::ResourceSpec,
            > {
                $crate::resource::__list::<$plugin>()
            }
            fn list_resource_templates() -> ::std::vec::Vec<
                $crate::resource_world::exports::switchyard::plugin::resource::ResourceTemplate,
            > {
                $crate::resource::__templates::<$plugin>()
            }
            fn read_resource(
                uri: ::std::string::String,
            ) -> ::std::result::Result<
                ::std::vec::Vec<$crate::bindings::switchyard::plugin::types::EmbeddedResource>,
                $crate::Error,
            > {
                $crate::resource::__read::<$plugin>(&uri)
            }
        }
        $crate::resource_world::export_resource_world!(__SwitchyardResourceExport with_types_in $crate::resource_world);
    };
}

#[cfg(test)]
mod tests {
    use super::match_template;

    #[test]
    fn templates_match_level_one_uris() {
        let v = match_template("notes://{id}", "notes://42").unwrap();
        assert_eq!(v["id"], "42");
        assert!(match_template("notes://{id}", "notes://a/b").is_none());
        assert_eq!(
            match_template("files://{+path}", "files://a/b.txt").unwrap()["path"],
            "a/b.txt"
        );
        let v = match_template("db://{table}/{row}.json", "db://users/7.json").unwrap();
        assert_eq!((v["table"].as_str(), v["row"].as_str()), ("users", "7"));
        assert!(match_template("notes://{id}", "other://42").is_none());
        assert!(match_template("notes://{id}", "notes://").is_none());
        assert!(
            match_template("notes://readme", "notes://readme")
                .unwrap()
                .is_empty()
        );
    }
}
