//! Reading `mining.submit` params without a JSON tree: the first six elements of the
//! array as strings borrowed from the line (a string with escapes is the only thing that
//! allocates), any other JSON value as an empty string that then fails its own check,
//! and whatever follows the sixth element skipped.

use super::message::{Submit, label};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// Reads submit params; anything but an array reads as an empty submit.
pub(super) fn parse_submit(params: &str) -> Submit<'_> {
    serde_json::from_str::<SubmitParams<'_>>(params).map(|p| p.0).unwrap_or_default()
}

/// Submit params read straight from the array: the first six elements as strings (others
/// as empty), anything after them skipped.
struct SubmitParams<'a>(Submit<'a>);

impl<'de> Deserialize<'de> for SubmitParams<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SubmitParams<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut f: [Option<Cow<'de, str>>; 6] = Default::default();
                for slot in f.iter_mut() {
                    match seq.next_element::<Lenient<'de>>()? {
                        Some(v) => *slot = Some(v.0),
                        None => break,
                    }
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                let [worker, job_id, extranonce2, ntime, nonce, version_bits] = f;
                Ok(SubmitParams(Submit {
                    worker: worker.unwrap_or_default(),
                    job_id: job_id.unwrap_or_default(),
                    extranonce2: extranonce2.unwrap_or_default(),
                    ntime: ntime.unwrap_or_default(),
                    nonce: nonce.unwrap_or_default(),
                    version_bits,
                }))
            }
        }
        d.deserialize_seq(V)
    }
}

/// A string, or any other JSON value read as empty.
struct Lenient<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Lenient<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lenient<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Lenient(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Lenient(Cow::Owned(label(v))))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Lenient(Cow::Borrowed("")))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Lenient(Cow::Borrowed("")))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Lenient(Cow::Borrowed("")))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Lenient(Cow::Borrowed("")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Lenient(Cow::Borrowed("")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Lenient(Cow::Borrowed("")))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Lenient(Cow::Borrowed("")))
            }
        }
        d.deserialize_any(V)
    }
}
