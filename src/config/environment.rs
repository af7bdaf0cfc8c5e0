//! `FEDSYNC_*` environment variables: which are config keys, which are
//! likely typos of one (refused), and which belong to someone else (ignored
//! with a warning, e.g. a deployment's `FEDSYNC_VERSION`).

use std::fmt;
use std::sync::LazyLock;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor, value::MapDeserializer};

use super::{Config, ConfigError};

/// The prefix of every config variable.
const PREFIX: &str = "FEDSYNC_";

/// Environment variables with the `FEDSYNC_` prefix that are not config keys
/// but are read elsewhere (the CLI, the tests); they pass without a word.
const NON_CONFIG_ENV: &[&str] = &[
    "FEDSYNC_ADMIN_TOKEN",
    "FEDSYNC_ADMIN_ADDR",
    "FEDSYNC_CONFIG",
];
const NON_CONFIG_ENV_PREFIXES: &[&str] = &["FEDSYNC_TEST_"];

/// What the environment contributes to the config.
#[derive(Debug, Default)]
pub(super) struct ConfigEnv {
    /// `(variable, dotted key, value)`, sorted by variable.
    pub keys: Vec<(String, String, String)>,
    /// One line per ignored variable, sorted by variable.
    pub warnings: Vec<String>,
}

/// Sorts the `FEDSYNC_*` variables of `env` into config keys and others.
///
/// After the `FEDSYNC_` prefix, compared case-insensitively, a variable is:
///
/// - passed over silently when it is one of [`NON_CONFIG_ENV`] or starts with
///   one of [`NON_CONFIG_ENV_PREFIXES`] (`FEDSYNC_ADMIN_TOKEN`,
///   `FEDSYNC_TEST_*`);
/// - a config key when its first `__`-separated part is a top-level key or
///   section of [`Config`] (`DATA_DIR`, `SYNC__DATA_EVERY`), or when it uses
///   the `__` separator at all (`DATABSE__URL`): it is applied, and a key
///   the config lacks is refused when the config is read, naming the variable;
/// - refused as a likely typo of a config key when it equals a section or
///   starts with a section followed by `_` (`DATABASE_URL`, `LOCAL_KIND`: a
///   single underscore where `__` belongs), or when it starts with a
///   top-level key that is not a section (`DATA_DIRR`). The error suggests
///   the intended variable when there is exactly such a key
///   (`FEDSYNC_DATABASE__URL`). Sections match as whole words, so
///   `FEDSYNC_LOGGER` is not taken for the section `log`;
/// - otherwise someone else's (`FEDSYNC_VERSION`, `FEDSYNC_IMAGE`,
///   `FEDSYNC_LOGGER`): ignored, with one warning naming it.
///
/// The sections and keys come from [`Config`] itself (see [`Schema`]).
pub(super) fn read(env: Vec<(String, String)>) -> Result<ConfigEnv, ConfigError> {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(name, _)| name.starts_with(PREFIX))
        .filter(|(name, _)| {
            !NON_CONFIG_ENV.contains(&name.as_str())
                && !NON_CONFIG_ENV_PREFIXES.iter().any(|p| name.starts_with(p))
        })
        .collect();
    vars.sort();
    let mut out = ConfigEnv::default();
    for (name, value) in vars {
        match classify(&name, &SCHEMA) {
            Kind::Key(key) => out.keys.push((name, key, value)),
            Kind::Typo(message) => return Err(ConfigError::Environment { name, message }),
            Kind::Foreign => out.warnings.push(format!(
                "environment variable `{name}` is not a config key; ignored"
            )),
        }
    }
    Ok(out)
}

enum Kind {
    /// A config key, dotted (`sync.data_every`).
    Key(String),
    /// A likely typo of a config key, with what is wrong.
    Typo(String),
    /// Not config.
    Foreign,
}

fn classify(name: &str, schema: &Schema) -> Kind {
    let rest = name[PREFIX.len()..].to_ascii_lowercase();
    let key = rest.replace("__", ".");
    let first = key.split('.').next().unwrap_or_default();
    if key.contains('.') || schema.top.iter().any(|top| top == first) {
        return Kind::Key(key);
    }
    // No `__` is left; ignore stray underscores at the ends.
    let words = rest
        .split('_')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    let suggestion = schema
        .leaves
        .iter()
        .find(|leaf| leaf.replace('.', "_") == words)
        .map(|leaf| env_name(leaf));
    for top in &schema.top {
        let message = if schema.is_section(top) {
            if words != *top && !words.starts_with(&format!("{top}_")) {
                continue;
            }
            match &suggestion {
                Some(right) => format!(
                    "not a config key; did you mean `{right}`? (a double underscore separates a section from its key)"
                ),
                None => format!(
                    "not a config key, yet it starts with the section `{top}`: its keys are set as `{}__<KEY>`; correct or rename the variable",
                    env_name(top)
                ),
            }
        } else {
            if !words.starts_with(top.as_str()) {
                continue;
            }
            format!(
                "not a config key, yet it starts with the key `{top}` (`{}`); correct or rename the variable",
                env_name(top)
            )
        };
        return Kind::Typo(message);
    }
    Kind::Foreign
}

/// The variable that sets a dotted key.
fn env_name(key: &str) -> String {
    format!("{PREFIX}{}", key.to_ascii_uppercase().replace('.', "__"))
}

static SCHEMA: LazyLock<Schema> = LazyLock::new(Schema::of::<Config>);

/// The keys a config struct has.
pub(super) struct Schema {
    /// Top-level keys and sections (`data_dir`, `database`).
    top: Vec<String>,
    /// Every key, dotted (`data_dir`, `database.url_file`, `notify.smtp.host`).
    leaves: Vec<String>,
}

impl Schema {
    /// Reads the keys from `T`'s `Deserialize`: every config struct denies
    /// unknown fields, so offered one it names the fields it has. This finds
    /// the keys `Serialize` leaves out too (unset `*_file` paths).
    pub(super) fn of<T: DeserializeOwned>() -> Schema {
        fn walk<T: DeserializeOwned>(path: &mut Vec<&'static str>, leaves: &mut Vec<String>) {
            match T::deserialize(Probe(path)) {
                Err(ProbeError::Fields(fields)) => {
                    for field in fields {
                        path.push(field);
                        walk::<T>(path, leaves);
                        path.pop();
                    }
                }
                _ if path.is_empty() => {}
                _ => leaves.push(path.join(".")),
            }
        }
        let mut leaves = Vec::new();
        walk::<T>(&mut Vec::new(), &mut leaves);
        let mut top: Vec<String> = Vec::new();
        for leaf in &leaves {
            let first = leaf.split('.').next().unwrap_or_default();
            if !top.iter().any(|t| t == first) {
                top.push(first.to_owned());
            }
        }
        Schema { top, leaves }
    }

    fn is_section(&self, top: &str) -> bool {
        self.leaves
            .iter()
            .any(|leaf| leaf.strip_prefix(top).is_some_and(|r| r.starts_with('.')))
    }

    #[cfg(test)]
    pub(super) fn leaves(&self) -> &[String] {
        &self.leaves
    }
}

/// A deserializer of nested maps along a path of fields, the innermost map
/// holding one field no struct has.
struct Probe<'a>(&'a [&'static str]);

const NO_SUCH_FIELD: &str = "\u{0}";

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        match self.0.split_first() {
            Some((field, rest)) => {
                visitor.visit_map(MapDeserializer::new(std::iter::once((*field, Probe(rest)))))
            }
            None => visitor.visit_map(MapDeserializer::new(std::iter::once((NO_SUCH_FIELD, ())))),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, ProbeError> for Probe<'_> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

#[derive(Debug)]
enum ProbeError {
    /// A struct refused the unknown field and named these.
    Fields(&'static [&'static str]),
    /// Anything else: a value that is not a struct.
    Other,
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("probing the config keys")
    }
}

impl std::error::Error for ProbeError {}

impl de::Error for ProbeError {
    fn custom<M: fmt::Display>(_: M) -> ProbeError {
        ProbeError::Other
    }

    fn unknown_field(_: &str, expected: &'static [&'static str]) -> ProbeError {
        ProbeError::Fields(expected)
    }
}
