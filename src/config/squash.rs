//! One mapping, two config structs: a component's own keys next to a settings block it shares
//! with others (every HTTP listener's limits, every OTLP exporter's client settings), written
//! flat as the Collector's `mapstructure:",squash"` does.
//!
//! serde's `flatten` would do the split but silently turns `deny_unknown_fields` off, so a
//! typo would be ignored. Here each key goes to the struct that declares it, a key neither
//! declares is an error naming both structs' keys, and each struct is then decoded with its own
//! `deny_unknown_fields` and error paths.

use serde::Deserializer;
use serde::de::{self, DeserializeOwned, Visitor};
use serde_yaml_ng::{Mapping, Value as Yaml};

use super::{ConfigError, decode};

/// Decodes `value` at `path` into the component's own struct `A` and the shared struct `B`.
pub fn decode_squashed<A: DeserializeOwned, B: DeserializeOwned>(
    path: &str,
    value: Yaml,
) -> Result<(A, B), ConfigError> {
    let own_fields = fields_of::<A>();
    let shared_fields = fields_of::<B>();
    let (mut own, mut shared) = (Mapping::new(), Mapping::new());
    match value {
        Yaml::Null => {}
        Yaml::Mapping(map) => {
            for (key, v) in map {
                let name = key.as_str().unwrap_or_default();
                if own_fields.contains(&name) {
                    own.insert(key, v);
                } else if shared_fields.contains(&name) {
                    shared.insert(key, v);
                } else {
                    let at = if path.is_empty() {
                        name.to_string()
                    } else {
                        format!("{path}.{name}")
                    };
                    let expected: Vec<String> = own_fields
                        .iter()
                        .chain(shared_fields)
                        .map(|f| format!("`{f}`"))
                        .collect();
                    return Err(ConfigError::new(
                        at,
                        format!(
                            "unknown field `{name}`, expected one of {}",
                            expected.join(", ")
                        ),
                    ));
                }
            }
        }
        _ => {
            return Err(ConfigError::new(
                path,
                "invalid type: expected a mapping of settings",
            ));
        }
    }
    Ok((
        decode(path, Yaml::Mapping(own))?,
        decode(path, Yaml::Mapping(shared))?,
    ))
}

/// The keys a derived `Deserialize` struct declares, asked of the derive itself (it names them
/// when it calls `deserialize_struct`), so the lists cannot drift from the structs.
fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

struct Probe<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("probed"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Own {
        #[serde(default)]
        framing: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Shared {
        #[serde(default)]
        endpoint: String,
        #[serde(default)]
        limit: u32,
    }

    fn split(yaml: &str) -> Result<(Own, Shared), String> {
        decode_squashed("receivers.x", serde_yaml_ng::from_str(yaml).unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn each_key_goes_to_the_struct_that_declares_it() {
        let (own, shared) = split("{framing: bytes, endpoint: 'h:1', limit: 3}").unwrap();
        assert_eq!(own.framing, "bytes");
        assert_eq!((shared.endpoint.as_str(), shared.limit), ("h:1", 3));
        let (own, shared) = split("").unwrap();
        assert_eq!((own.framing.as_str(), shared.limit), ("", 0));
    }

    #[test]
    fn an_unknown_key_is_an_error_listing_both_structs_keys() {
        assert_eq!(
            split("{endpoint: 'h:1', colour: red}").unwrap_err(),
            "receivers.x.colour: unknown field `colour`, expected one of `framing`, `endpoint`, `limit`"
        );
    }

    #[test]
    fn errors_inside_either_struct_keep_their_paths() {
        assert!(
            split("{limit: many}")
                .unwrap_err()
                .starts_with("receivers.x.limit: invalid type")
        );
        assert!(
            split("[1]")
                .unwrap_err()
                .starts_with("receivers.x: invalid type")
        );
    }
}
