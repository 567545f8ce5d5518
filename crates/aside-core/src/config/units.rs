//! The units of settings and flags: durations, limits (a duration or `none`) and sizes, each
//! read and written in one place.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use aside_protocol::format_duration;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::MAX_DURATION;

/// A duration that cannot be read, or is longer than [`MAX_DURATION`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DurationError {
    #[error("{input:?} is not a duration ({reason}); write it like 500ms, 30s, 2m or 1h")]
    Invalid {
        input: String,
        reason: humantime::DurationError,
    },
    #[error("{input:?} is longer than the limit of 10 years")]
    TooLong { input: String },
}

/// Reads a duration such as `500ms`, `30s`, `2m`, `1h`, `1h30m` or `7d`.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let d = humantime::parse_duration(s).map_err(|reason| DurationError::Invalid {
        input: s.to_string(),
        reason,
    })?;
    check_duration(d).map_err(|_| DurationError::TooLong {
        input: s.to_string(),
    })
}

/// Refuses a duration longer than [`MAX_DURATION`], naming it in the written form.
pub(super) fn check_duration(d: Duration) -> Result<Duration, DurationError> {
    if d > MAX_DURATION {
        return Err(DurationError::TooLong {
            input: format_duration(d),
        });
    }
    Ok(d)
}

/// Reads a duration or `none`.
pub fn parse_limit(s: &str) -> Result<Option<Duration>, DurationError> {
    if s.trim().eq_ignore_ascii_case("none") {
        Ok(None)
    } else {
        parse_duration(s).map(Some)
    }
}

/// Writes a limit as [`parse_limit`] reads it.
pub fn format_limit(d: Option<Duration>) -> String {
    d.map_or_else(|| "none".to_string(), format_duration)
}

/// A number of bytes, written `1GiB`, `64KiB` or `100B` (the largest binary unit that
/// divides it) and read in those forms, in decimal units (`1MB`) or as a plain number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Size(pub u64);

/// A size that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("{input:?} is not a size; write it like 64KiB, 1MiB or 1GiB")]
    NotASize { input: String },
    #[error("{input:?}: unknown unit; use B, KiB, MiB or GiB")]
    UnknownUnit { input: String },
    #[error("{input:?} is too large")]
    TooLarge { input: String },
}

impl FromStr for Size {
    type Err = SizeError;

    fn from_str(s: &str) -> Result<Self, SizeError> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let input = || s.to_string();
        let n: u64 = num
            .parse()
            .map_err(|_| SizeError::NotASize { input: input() })?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1_000,
            "kib" => 1 << 10,
            "m" | "mb" => 1_000_000,
            "mib" => 1 << 20,
            "g" | "gb" => 1_000_000_000,
            "gib" => 1 << 30,
            "tib" => 1 << 40,
            _ => return Err(SizeError::UnknownUnit { input: input() }),
        };
        n.checked_mul(mult)
            .map(Size)
            .ok_or(SizeError::TooLarge { input: input() })
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (size, name) in [
            (1u64 << 40, "TiB"),
            (1 << 30, "GiB"),
            (1 << 20, "MiB"),
            (1 << 10, "KiB"),
        ] {
            if n >= size && n.is_multiple_of(size) {
                return write!(f, "{}{name}", n / size);
            }
        }
        write!(f, "{n}B")
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Reads a size such as `1GiB`, `512KiB`, `1MB` or a plain number of bytes.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    s.parse::<Size>().map(|s| s.0)
}

/// Writes a size as [`parse_size`] reads it.
pub fn fmt_size(n: u64) -> String {
    Size(n).to_string()
}

/// `#[serde(with)]` for a byte count written as a [`Size`].
pub(super) mod size {
    use super::*;

    pub fn serialize<S: Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
        Size(*n).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        Size::deserialize(d).map(|s| s.0)
    }
}

/// `#[serde(with)]` for a duration in the one written form.
pub(super) mod duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        parse_duration(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with)]` for a limit: a duration, or `none` for no limit.
pub(super) mod limit {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_limit(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        parse_limit(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with)]` for an optional name where a blank string means none, so that every
/// setting can be written out (TOML has no null).
pub(super) mod blank_is_none {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_deref().unwrap_or(""))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let v = String::deserialize(d)?;
        Ok(Some(v).filter(|v| !v.trim().is_empty()))
    }
}
