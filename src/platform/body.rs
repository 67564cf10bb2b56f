//! Request bodies: a struct read from a JSON object, each field from the member of its name.
//! `body!` writes the reading for a struct, with one shared function per field type (`Field`), so
//! a body type costs the Worker a few hundred bytes of wasm where a derived `Deserialize` cost a
//! few thousand (`rows` does the same for the rows of a statement).
//!
//! The rules are the ones `#[serde(deny_unknown_fields)]` applied: a member the struct does not
//! name, a missing member or a wrong type is an error; an `Option` field reads a missing member or
//! `null` as `None`; a field written `name: T = default` takes `default` when the member is
//! missing. Two additions: `Option<Option<T>>` reads `null` as `Some(None)`, so a PATCH body tells
//! "leave it" (absent) from "clear it" (`null`); and `Option<Value>` reads `null` as
//! `Some(Value::Null)`, for the same reason (a client's `integrations`: `null` means all).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A JSON object, as a body arrives.
pub type Object = Map<String, Value>;

/// A type read from a JSON object. The error is the message a 422 carries.
pub trait Body: Sized {
    fn from_object(object: Object) -> Result<Self, String>;
}

/// What one member can be read as. `missing` is the value when the object has no such member;
/// `null` is what an `Option<Self>` member holding `null` reads as inside its `Some` (none for
/// most types, so `null` there is `None`).
pub trait Field: Sized {
    fn field(value: Value, name: &str) -> Result<Self, String>;

    fn missing(name: &str) -> Result<Self, String> {
        Err(format!("missing field `{name}`"))
    }

    fn null() -> Option<Self> {
        None
    }
}

fn wrong(name: &str, want: &str, got: &Value) -> String {
    format!("`{name}` must be {want}, not {}", super::rows::kind(got))
}

impl Field for String {
    fn field(value: Value, name: &str) -> Result<Self, String> {
        match value {
            Value::String(s) => Ok(s),
            other => Err(wrong(name, "a string", &other)),
        }
    }
}

impl Field for bool {
    fn field(value: Value, name: &str) -> Result<Self, String> {
        match value {
            Value::Bool(b) => Ok(b),
            other => Err(wrong(name, "true or false", &other)),
        }
    }
}

impl Field for i64 {
    fn field(value: Value, name: &str) -> Result<Self, String> {
        match &value {
            Value::Number(n) => n.as_i64().ok_or_else(|| format!("`{name}` must be an integer, not {n}")),
            other => Err(wrong(name, "an integer", other)),
        }
    }
}

/// Narrower integers: an integer out of the type's range is an error.
macro_rules! narrow {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn field(value: Value, name: &str) -> Result<Self, String> {
                let n = i64::field(value, name)?;
                <$t>::try_from(n).map_err(|_| format!("`{name}` is out of range: {n}"))
            }
        }
    )*};
}
narrow!(i8, i32, u16);

impl Field for u64 {
    fn field(value: Value, name: &str) -> Result<Self, String> {
        match &value {
            Value::Number(n) => n.as_u64().ok_or_else(|| format!("`{name}` must be a whole number, not {n}")),
            other => Err(wrong(name, "a whole number", other)),
        }
    }
}

/// Any JSON, kept as sent.
impl Field for Value {
    fn field(value: Value, _name: &str) -> Result<Self, String> {
        Ok(value)
    }

    fn null() -> Option<Self> {
        Some(Value::Null)
    }
}

/// An object kept as sent (a body whose members the handler checks itself).
impl Body for Object {
    fn from_object(object: Object) -> Result<Self, String> {
        Ok(object)
    }
}

fn object(value: Value, name: &str) -> Result<Object, String> {
    match value {
        Value::Object(o) => Ok(o),
        other => Err(wrong(name, "an object", &other)),
    }
}

/// JSON text read as `T` (`name` is what the messages call it). Everything the Worker reads from
/// JSON goes through `Value` and `Field`, so serde_json's parser is in the Worker once, not once
/// per type.
pub fn parse<T: Field>(json: &[u8], name: &str) -> Result<T, String> {
    match serde_json::from_slice(json) {
        Ok(value) => T::field(value, name),
        Err(e) => Err(format!("`{name}` is not valid JSON: {e}")),
    }
}

impl<T: Field> Field for Vec<T> {
    fn field(value: Value, name: &str) -> Result<Self, String> {
        match value {
            Value::Array(items) => {
                let mut list = Vec::with_capacity(items.len());
                for item in items {
                    list.push(T::field(item, name)?);
                }
                Ok(list)
            }
            other => Err(wrong(name, "a list", &other)),
        }
    }
}

/// A pair, sent as a two-item list.
impl<A: Field, B: Field> Field for (A, B) {
    fn field(value: Value, name: &str) -> Result<Self, String> {
        match value {
            Value::Array(items) if items.len() == 2 => {
                let mut items = items.into_iter();
                let a = A::field(items.next().unwrap_or_default(), name)?;
                Ok((a, B::field(items.next().unwrap_or_default(), name)?))
            }
            other => Err(wrong(name, "a pair", &other)),
        }
    }
}

/// An object whose members are all `T`.
impl<T: Field> Field for BTreeMap<String, T> {
    fn field(value: Value, name: &str) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for (k, v) in object(value, name)? {
            map.insert(k, T::field(v, name)?);
        }
        Ok(map)
    }
}

/// A missing member is `None`, and so is `null`, unless `T` has a `null` of its own (an
/// `Option`: `Option<Option<T>>` reads `null` as `Some(None)`; `Value`: `Some(Value::Null)`).
impl<T: Field> Field for Option<T> {
    fn field(value: Value, name: &str) -> Result<Self, String> {
        if value.is_null() {
            return Ok(T::null());
        }
        T::field(value, name).map(Some)
    }

    fn missing(_name: &str) -> Result<Self, String> {
        Ok(None)
    }

    fn null() -> Option<Self> {
        Some(None)
    }
}

/// A body nested in a body, such as a booking's contact, or an object kept as sent.
impl<T: Body> Field for T {
    fn field(value: Value, name: &str) -> Result<Self, String> {
        T::from_object(object(value, name)?)
    }
}

/// An object being read into a struct, member by member. A member that fails to read records the
/// first error and stands in as its type's default, so a struct is built in one pass with no
/// early return (see `rows::Cells`, which does the same for rows).
pub struct Fields {
    object: Object,
    error: Option<String>,
}

impl Fields {
    pub fn new(object: Object) -> Self {
        Self { object, error: None }
    }

    /// Member `name`, taken out of the object.
    #[inline(never)]
    pub fn take<T: Field + Default>(&mut self, name: &str) -> T {
        let read = match self.object.remove(name) {
            Some(value) => T::field(value, name),
            None => T::missing(name),
        };
        self.keep(read)
    }

    /// `take`, with `default` when the object has no such member.
    #[inline(never)]
    pub fn take_or<T: Field + Default>(&mut self, name: &str, default: T) -> T {
        match self.object.remove(name) {
            Some(value) => {
                let read = T::field(value, name);
                self.keep(read)
            }
            None => default,
        }
    }

    fn keep<T: Default>(&mut self, read: Result<T, String>) -> T {
        read.unwrap_or_else(|e| {
            self.error.get_or_insert(e);
            T::default()
        })
    }

    /// The struct; or the first member that failed, or one that the struct does not name
    /// (`names` are the ones it does).
    pub fn finish<S>(self, value: S, names: &[&str]) -> Result<S, String> {
        match self.refusal(names) {
            None => Ok(value),
            Some(e) => Err(e),
        }
    }

    /// The struct, or the first member that failed; members it does not name are ignored (the
    /// claims a token may carry beyond the ones read).
    pub fn finish_open<S>(self, value: S) -> Result<S, String> {
        match self.error {
            None => Ok(value),
            Some(e) => Err(e),
        }
    }

    /// `finish`'s verdict, apart from the struct's type so it is in the Worker once.
    #[inline(never)]
    fn refusal(self, names: &[&str]) -> Option<String> {
        if self.error.is_some() {
            return self.error;
        }
        let unknown = self.object.keys().next()?;
        let expected: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        Some(format!("unknown field `{unknown}`, expected one of {}", expected.join(", ")))
    }
}

/// Defines a struct and its `Body`: each field is read from the member of its name. Attributes
/// on the struct and its fields (derives, docs, serde's serializing options) pass through. A
/// field may end in `= default`, its value when the member is missing. Every field's type is
/// `Default`, the stand-in while a failed body is being refused.
macro_rules! body {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty $(= $default:expr)? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field : $ty ),*
        }

        impl $crate::platform::body::Body for $name {
            fn from_object(object: $crate::platform::body::Object) -> Result<Self, String> {
                let mut fields = $crate::platform::body::Fields::new(object);
                let value = Self { $( $field: $crate::platform::body::body!(@field fields, $field $(, $default)?) ),* };
                fields.finish(value, &[$(stringify!($field)),*])
            }
        }
    };
    (@field $fields:ident, $field:ident) => {
        $fields.take(stringify!($field))
    };
    (@field $fields:ident, $field:ident, $default:expr) => {
        $fields.take_or(stringify!($field), $default)
    };
}
pub(crate) use body;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    body! {
        #[derive(Debug, PartialEq, Default)]
        struct Person {
            name: String,
            phone: Option<String>,
        }
    }

    body! {
        /// A test body.
        #[derive(Debug, PartialEq)]
        struct Sample {
            title: String,
            count: i64,
            small: Option<u16>,
            force: bool = false,
            tags: Vec<String> = Vec::new(),
            clear: Option<Option<String>>,
            person: Option<Person>,
            flags: BTreeMap<String, bool> = BTreeMap::new(),
            raw: Option<Value>,
        }
    }

    fn read(v: Value) -> Result<Sample, String> {
        let Value::Object(o) = v else { panic!("not an object") };
        Sample::from_object(o)
    }

    #[test]
    fn members_are_read_by_name_and_missing_ones_take_their_defaults() {
        let s = read(json!({"title": "T", "count": 3})).unwrap();
        assert_eq!(
            s,
            Sample {
                title: "T".into(),
                count: 3,
                small: None,
                force: false,
                tags: vec![],
                clear: None,
                person: None,
                flags: BTreeMap::new(),
                raw: None
            }
        );
        let s = read(json!({"title": "T", "count": -1, "small": 80, "force": true, "tags": ["a", "b"],
            "person": {"name": "Ann", "phone": null}, "flags": {"x": true}, "raw": [1]}))
        .unwrap();
        assert_eq!(s.small, Some(80));
        assert!(s.force);
        assert_eq!(s.tags, ["a", "b"]);
        assert_eq!(s.person, Some(Person { name: "Ann".into(), phone: None }));
        assert_eq!(s.flags.get("x"), Some(&true));
        assert_eq!(s.raw, Some(json!([1])));
    }

    #[test]
    fn null_clears_a_double_option_and_is_none_elsewhere() {
        let s =
            read(json!({"title": "T", "count": 1, "clear": null, "small": null, "person": null, "raw": null})).unwrap();
        assert_eq!(s.clear, Some(None));
        assert_eq!(s.small, None);
        assert_eq!(s.person, None);
        assert_eq!(s.raw, Some(Value::Null));
        assert_eq!(read(json!({"title": "T", "count": 1, "clear": "x"})).unwrap().clear, Some(Some("x".into())));
    }

    #[test]
    fn bad_members_are_refused_with_the_field_named() {
        let cases = [
            (json!({"count": 1}), "missing field `title`"),
            (json!({"title": 5, "count": 1}), "`title` must be a string, not a number"),
            (json!({"title": "T", "count": 1.5}), "`count` must be an integer, not 1.5"),
            (json!({"title": "T", "count": "1"}), "`count` must be an integer, not a string"),
            (json!({"title": "T", "count": 1, "small": 70000}), "`small` is out of range: 70000"),
            (json!({"title": "T", "count": 1, "small": -1}), "`small` is out of range: -1"),
            (json!({"title": "T", "count": 1, "force": 1}), "`force` must be true or false, not a number"),
            (json!({"title": "T", "count": 1, "tags": ["a", 2]}), "`tags` must be a string, not a number"),
            (json!({"title": "T", "count": 1, "tags": "a"}), "`tags` must be a list, not a string"),
            (json!({"title": "T", "count": 1, "person": {"phone": "1"}}), "missing field `name`"),
            (json!({"title": "T", "count": 1, "person": {"name": "A", "age": 3}}), "unknown field `age`, expected one of `name`, `phone`"),
            (json!({"title": "T", "count": 1, "flags": {"x": "yes"}}), "`flags` must be true or false, not a string"),
            (json!({"title": "T", "count": 1, "clear": 3}), "`clear` must be a string, not a number"),
            (json!({"title": "T", "count": 1, "colour": "red"}), "unknown field `colour`, expected one of `title`, `count`, `small`, `force`, `tags`, `clear`, `person`, `flags`, `raw`"),
            (json!({"title": "T", "count": 9223372036854775808u64}), "`count` must be an integer, not 9223372036854775808"),
        ];
        for (body, message) in cases {
            assert_eq!(read(body.clone()).unwrap_err(), message, "{body}");
        }
    }
}
