//! Lenient scalar deserialisers, for request types here and at the API edge: the Query
//! protocol sends every scalar as a string, while stored JSON has numbers.

use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrStr {
    Num(u64),
    Str(String),
}

/// An optional whole number given as a JSON number or a string (`"80"`); a value out of `T`'s range
/// is an error.
pub fn opt_num<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<Option<T>, D::Error> {
    let v: Option<NumOrStr> = Option::deserialize(d)?;
    let n = match v {
        None => return Ok(None),
        Some(NumOrStr::Num(n)) => n,
        Some(NumOrStr::Str(s)) => s
            .trim()
            .parse::<u64>()
            .map_err(|_| serde::de::Error::custom(format!("'{s}' is not a whole number")))?,
    };
    T::try_from(n)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("{n} is out of range")))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BoolOrStr {
    Bool(bool),
    Str(String),
}

/// An optional boolean given as a JSON boolean or the string `"true"` / `"false"`.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<BoolOrStr>::deserialize(d)? {
        None => Ok(None),
        Some(BoolOrStr::Bool(b)) => Ok(Some(b)),
        Some(BoolOrStr::Str(s)) => match s.as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(serde::de::Error::custom(format!("'{s}' is not a boolean"))),
        },
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ListOrEmpty<T> {
    List(Vec<T>),
    Empty(String),
}

/// A list, where the Query protocol's empty list (`Name=`) arrives as an empty string.
pub fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    match Option::<ListOrEmpty<T>>::deserialize(d)? {
        None => Ok(Vec::new()),
        Some(ListOrEmpty::List(v)) => Ok(v),
        Some(ListOrEmpty::Empty(s)) if s.is_empty() => Ok(Vec::new()),
        Some(ListOrEmpty::Empty(_)) => Err(serde::de::Error::custom("expected a list")),
    }
}
