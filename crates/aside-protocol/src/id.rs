use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A task's id: a positive decimal number, unique within one state directory.
///
/// Ids become file names, so they are checked against a strict pattern before anything
/// else sees them: ASCII digits only, no leading zero, at most 15 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(u64);

#[derive(Debug, thiserror::Error)]
#[error("invalid task id {0:?}: a task id is a positive number such as 42")]
pub struct InvalidId(pub String);

impl TaskId {
    pub const MAX_DIGITS: usize = 15;

    pub fn new(n: u64) -> Option<Self> {
        (n > 0 && n < 10u64.pow(Self::MAX_DIGITS as u32)).then_some(Self(n))
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl FromStr for TaskId {
    type Err = InvalidId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let well_formed = !s.is_empty()
            && s.len() <= Self::MAX_DIGITS
            && s.bytes().all(|b| b.is_ascii_digit())
            && !s.starts_with('0');
        if !well_formed {
            return Err(InvalidId(s.to_string()));
        }
        s.parse::<u64>()
            .ok()
            .and_then(Self::new)
            .ok_or_else(|| InvalidId(s.to_string()))
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for TaskId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TaskId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Accept "42" and 42: clients in other languages may send either.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
            Raw::Number(n) => {
                Self::new(n).ok_or_else(|| serde::de::Error::custom(InvalidId(n.to_string())))
            }
        }
    }
}

impl JsonSchema for TaskId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TaskId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[1-9][0-9]{0,14}$",
            "description": "A task's id: a positive decimal number."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_pattern() {
        assert_eq!("42".parse::<TaskId>().unwrap().get(), 42);
        for bad in [
            "",
            "0",
            "042",
            "-1",
            "1.0",
            "../1",
            "1/",
            " 1",
            "1234567890123456",
            "١",
        ] {
            assert!(bad.parse::<TaskId>().is_err(), "{bad:?} accepted");
        }
        let id: TaskId = serde_json::from_str("\"7\"").unwrap();
        assert_eq!(id.to_string(), "7");
        assert!(serde_json::from_str::<TaskId>("\"../etc\"").is_err());
    }
}
