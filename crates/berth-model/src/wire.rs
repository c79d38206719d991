//! ECS's closed enums, and decoding request members into typed shapes with ECS's errors.
//!
//! Each enum ECS spells one way on the wire (`tcp`, `HEALTHY`, `memberOf`) is a Rust enum
//! made by [`wire_enum!`]: serde gets the spellings, so a stored record and a response read
//! exactly as what the client sent. A request must not meet serde's "unknown variant",
//! though: the edge would answer that with a `SerializationException`, where ECS answers an
//! `InvalidParameterException` that names the member. So the request decoders
//! (`TaskDefinition::from_request`, `PlacementStrategy::from_request`, ...) first check the
//! enum members of the raw JSON with [`check`], then let serde build the typed value.
//!
//! Responses go the other way: each record borrows into a private wire struct deriving
//! `Serialize` (`TaskWire`, `ServiceWire`, ...), whose fields are the ECS shape's members, and
//! [`to_value`] renders it.

use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::ApiError;

/// Defines a closed ECS enum: each variant with its wire spelling, and the member name ECS's
/// error names (`Invalid protocol "sctp"; valid: tcp, udp`). The enum gets serde, `as_str`,
/// `ALL`, `Display` and `FromStr` (whose error is that `InvalidParameterException`).
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($member:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize,
        )]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $wire)] $variant, )+
        }

        impl $name {
            /// Every value, in ECS's order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The wire spelling.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::ApiError;

            /// The exact wire spelling (ECS is case-sensitive), or ECS's error naming the member.
            fn from_str(s: &str) -> Result<Self, $crate::ApiError> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::wire::invalid_value($member, s, Self::ALL.iter().map(|v| v.as_str())))
            }
        }
    };
}
pub(crate) use wire_enum;

/// ECS's answer to a value outside an enum: `Invalid protocol "sctp"; valid: tcp, udp`.
pub(crate) fn invalid_value<'a>(
    member: &str,
    value: &str,
    valid: impl Iterator<Item = &'a str>,
) -> ApiError {
    let valid: Vec<&str> = valid.collect();
    ApiError::invalid(format!(
        "Invalid {member} {value:?}; valid: {}",
        valid.join(", ")
    ))
}

/// Checks an enum member of a request: a string must be one of `E`'s values. An absent
/// member, or one of another JSON type, is left to serde (a missing member it may default, a
/// wrong type is the client's serialization error).
pub(crate) fn check<E: std::str::FromStr<Err = ApiError>>(
    v: Option<&Value>,
) -> Result<(), ApiError> {
    match v.and_then(Value::as_str) {
        Some(s) => s.parse::<E>().map(drop),
        None => Ok(()),
    }
}

/// The entries of an array member, none if it is absent or not an array.
pub(crate) fn each<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

/// Decodes a request member that ECS validates as a whole (`placementStrategy`,
/// `loadBalancers`, `networkConfiguration`): a value that does not fit the shape is ECS's
/// `InvalidParameterException` naming the member, as berth answered before these members
/// were typed. Check the member's enums first (see the module doc).
pub(crate) fn member<T: DeserializeOwned>(member: &str, v: &Value) -> Result<T, ApiError> {
    T::deserialize(v).map_err(|e| ApiError::invalid(format!("Invalid {member}: {e}")))
}

/// Reads an optional enum member that berth stored unchecked before it was typed
/// (`assignPublicIp`, a volume's `scope`, ...): a value outside ECS's set, which only such an
/// old record can hold, reads as absent instead of making the whole record unreadable.
/// Requests are checked before they are decoded, so this never hides a client's mistake.
pub(crate) fn lenient<'de, D, E>(d: D) -> Result<Option<E>, D::Error>
where
    D: serde::Deserializer<'de>,
    E: DeserializeOwned,
{
    let v = <Option<Value> as serde::Deserialize>::deserialize(d)?;
    Ok(v.and_then(|v| E::deserialize(v).ok()))
}

/// Renders a response's wire struct. Wire structs hold strings, numbers, lists, string-keyed
/// maps and JSON values, which always serialize (a non-finite float becomes `null`, as with
/// `json!`, whose own unwrap this is).
pub(crate) fn to_value(shape: impl Serialize) -> Value {
    serde_json::to_value(shape).expect("wire structs always serialize")
}

/// A list member berth always answers empty (`attachments`, `networkInterfaces`, ...).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EmptyList;

impl Serialize for EmptyList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(std::iter::empty::<()>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use serde::{Deserialize, Serialize};

    wire_enum! {
        /// A test enum.
        #[derive(Default)]
        pub enum Colour ("colour") {
            #[default]
            Red = "red",
            DarkBlue = "DARK_BLUE",
        }
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Paint {
        #[serde(
            default,
            deserialize_with = "lenient",
            skip_serializing_if = "Option::is_none"
        )]
        colour: Option<Colour>,
    }

    #[test]
    fn enums_speak_the_wire_spelling() {
        assert_eq!(Colour::default(), Colour::Red);
        assert_eq!(Colour::DarkBlue.to_string(), "DARK_BLUE");
        assert_eq!("DARK_BLUE".parse::<Colour>(), Ok(Colour::DarkBlue));
        assert_eq!(
            serde_json::to_string(&Colour::DarkBlue).unwrap(),
            r#""DARK_BLUE""#
        );
        for c in Colour::ALL {
            let back: Colour = serde_json::from_value(Value::from(c.as_str())).unwrap();
            assert_eq!(back, *c);
        }
        let e = "dark_blue".parse::<Colour>().unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterException);
        assert_eq!(
            e.message,
            r#"Invalid colour "dark_blue"; valid: red, DARK_BLUE"#
        );
    }

    #[test]
    fn check_leaves_other_types_to_serde() {
        assert!(check::<Colour>(None).is_ok());
        assert!(check::<Colour>(Some(&Value::from(5))).is_ok());
        assert!(check::<Colour>(Some(&Value::from("red"))).is_ok());
        assert!(check::<Colour>(Some(&Value::from("green"))).is_err());
    }

    #[test]
    fn lenient_reads_an_unknown_stored_value_as_absent() {
        let p: Paint = serde_json::from_str(r#"{"colour":"green"}"#).unwrap();
        assert_eq!(p, Paint { colour: None });
        let p: Paint = serde_json::from_str(r#"{"colour":"red"}"#).unwrap();
        assert_eq!(p.colour, Some(Colour::Red));
        let p: Paint = serde_json::from_str("{}").unwrap();
        assert_eq!(p.colour, None);
    }

    #[test]
    fn members_that_do_not_fit_name_the_member() {
        let e = member::<Paint>("paint", &Value::from("red")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterException);
        assert!(e.message.starts_with("Invalid paint: "), "{}", e.message);
    }
}
