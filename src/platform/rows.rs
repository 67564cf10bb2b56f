//! Typed rows: a struct read from one row of a statement, each field from the column of its
//! name. `row!` writes the reading for a struct, field by field, with one shared function per
//! column type (`Column`), so a row type costs the Worker a few hundred bytes of wasm where a
//! derived `Deserialize` cost about two thousand.
//!
//! The rules are serde's for the same JSON: a missing column or a wrong type is an error, except
//! that an `Option` field reads a missing column or NULL as `None`; extra columns are ignored.
//! Booleans also read SQLite's integers (0 is false, any other is true), as the booking tables
//! store them.

use serde_json::Value;

use super::error::StoreError;
use super::ports::Row;

/// A type read from one row.
pub trait FromRow: Sized {
    fn from_row(row: Row) -> Result<Self, StoreError>;
}

/// What one column can be read as. `value` is `None` when the row has no such column.
pub trait Column: Sized {
    fn column(value: Option<Value>, name: &str) -> Result<Self, StoreError>;
}

fn wrong(name: &str, want: &str, got: Option<&Value>) -> StoreError {
    StoreError::Decode(match got {
        None => format!("missing field `{name}`"),
        Some(v) => format!("column `{name}`: expected {want}, got {}", kind(v)),
    })
}

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Column for String {
    fn column(value: Option<Value>, name: &str) -> Result<Self, StoreError> {
        match value {
            Some(Value::String(s)) => Ok(s),
            other => Err(wrong(name, "a string", other.as_ref())),
        }
    }
}

impl Column for i64 {
    fn column(value: Option<Value>, name: &str) -> Result<Self, StoreError> {
        match &value {
            Some(Value::Number(n)) => n.as_i64().ok_or_else(|| wrong(name, "an integer", value.as_ref())),
            other => Err(wrong(name, "an integer", other.as_ref())),
        }
    }
}

/// Narrower integers: an integer out of the type's range is an error.
macro_rules! narrow {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn column(value: Option<Value>, name: &str) -> Result<Self, StoreError> {
                let n = i64::column(value, name)?;
                <$t>::try_from(n).map_err(|_| StoreError::Decode(format!("column `{name}`: {n} is out of range")))
            }
        }
    )*};
}
narrow!(i8, i32);

impl Column for bool {
    fn column(value: Option<Value>, name: &str) -> Result<Self, StoreError> {
        match &value {
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.as_f64() != Some(0.0)),
            other => Err(wrong(name, "a boolean or an integer", other.as_ref())),
        }
    }
}

/// A list of strings stored as the text of a JSON array (`ports::json_list` writes it).
impl Column for Vec<String> {
    fn column(value: Option<Value>, name: &str) -> Result<Self, StoreError> {
        json_text(&String::column(value, name)?, name)
    }
}

/// Column `name`'s text, parsed as the JSON it stores.
pub fn json_text<T: super::body::Field>(text: &str, name: &str) -> Result<T, StoreError> {
    super::body::parse(text.as_bytes(), name).map_err(|e| StoreError::Decode(format!("column {e}")))
}

impl<T: Column> Column for Option<T> {
    fn column(value: Option<Value>, name: &str) -> Result<Self, StoreError> {
        match value {
            None | Some(Value::Null) => Ok(None),
            v => T::column(v, name).map(Some),
        }
    }
}

/// A row being read into a struct, column by column. A column that fails to read records the
/// first error and stands in as its type's default, so a struct is built in one pass with no
/// early return: an early return per field would drop the fields read before it, and that drop
/// code, repeated per field, was most of a row type's size.
pub struct Cells {
    row: Row,
    error: Option<StoreError>,
}

impl Cells {
    pub fn new(row: Row) -> Self {
        Self { row, error: None }
    }

    /// Column `name` (taken out of the row, so nothing is cloned).
    #[inline(never)]
    pub fn get<T: Column + Default>(&mut self, name: &str) -> T {
        let value = self.row.remove(name);
        self.read(T::column(value, name))
    }

    /// `get`, with `default` for a row that has no such column (serde's `#[serde(default)]`): a
    /// struct read by statements that do not all select the column. NULL is still read as the
    /// type.
    #[inline(never)]
    pub fn get_or<T: Column + Default>(&mut self, name: &str, default: T) -> T {
        match self.row.remove(name) {
            None => default,
            value => self.read(T::column(value, name)),
        }
    }

    fn read<T: Default>(&mut self, result: Result<T, StoreError>) -> T {
        result.unwrap_or_else(|e| {
            self.error.get_or_insert(e);
            T::default()
        })
    }

    /// The struct, or the first column that failed.
    pub fn finish<S>(self, value: S) -> Result<S, StoreError> {
        match self.refusal() {
            None => Ok(value),
            Some(e) => Err(e),
        }
    }

    /// `finish`'s verdict, apart from the struct's type so dropping the row is in the Worker once.
    #[inline(never)]
    fn refusal(self) -> Option<StoreError> {
        self.error
    }
}

/// Defines a struct and its `FromRow`: each field is read from the column of its name.
/// Attributes on the struct and its fields (derives, docs, serde's serializing options) pass
/// through. A field may end in `= default`, the value when the row has no such column.
macro_rules! row {
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

        impl $crate::platform::rows::FromRow for $name {
            fn from_row(
                row: $crate::platform::ports::Row,
            ) -> Result<Self, $crate::platform::error::StoreError> {
                let mut cells = $crate::platform::rows::Cells::new(row);
                let value = Self { $( $field: $crate::platform::rows::row!(@column cells, $field $(, $default)?) ),* };
                cells.finish(value)
            }
        }
    };
    (@column $cells:ident, $field:ident) => {
        $cells.get(stringify!($field))
    };
    (@column $cells:ident, $field:ident, $default:expr) => {
        $cells.get_or(stringify!($field), $default)
    };
}
pub(crate) use row;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    row! {
        /// A test row.
        #[derive(Debug, PartialEq)]
        struct Sample {
            id: String,
            n: i64,
            note: Option<String>,
            on: bool,
            tags: Vec<String>,
            minutes: i32,
            level: i64 = 3,
        }
    }

    fn row(v: Value) -> Row {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_row_reads_each_field_from_its_column() {
        let r = row(json!({"id": "a", "n": 7, "note": null, "on": 1, "tags": r#"["k"]"#, "minutes": 30, "extra": "x"}));
        let s = Sample::from_row(r).unwrap();
        assert_eq!(
            s,
            Sample { id: "a".into(), n: 7, note: None, on: true, tags: vec!["k".into()], minutes: 30, level: 3 }
        );
        let r = row(json!({"id": "b", "n": -1, "note": "hi", "on": false, "tags": "[]", "minutes": -5, "level": 9}));
        let s = Sample::from_row(r).unwrap();
        assert_eq!((s.note.as_deref(), s.on, s.tags.len(), s.minutes, s.level), (Some("hi"), false, 0, -5, 9));
        for (on, want) in [(json!(0), false), (json!(2), true), (json!(-1), true), (json!(true), true)] {
            let r = row(json!({"id": "c", "n": 0, "on": on, "tags": "[]", "minutes": 0}));
            assert_eq!(Sample::from_row(r).unwrap().on, want);
        }
    }

    #[test]
    fn a_missing_column_or_a_wrong_type_is_an_error_as_with_serde() {
        let base = json!({"id": "a", "n": 7, "on": 0, "tags": "[]", "minutes": 1});
        let cases = [
            ("id", Value::Null, "expected a string, got null"),
            ("id", json!(5), "expected a string, got a number"),
            ("n", json!(1.5), "expected an integer, got a number"),
            ("n", json!("7"), "expected an integer, got a string"),
            ("on", json!("1"), "expected a boolean or an integer, got a string"),
            ("on", json!(0.5), "expected a boolean or an integer, got a number"),
            ("note", json!(3), "expected a string, got a number"),
            ("minutes", json!(1.5), "expected an integer, got a number"),
            ("tags", json!(["k"]), "expected a string, got an array"),
            ("level", Value::Null, "expected an integer, got null"),
        ];
        for (field, value, want) in cases {
            let mut r = row(base.clone());
            r.insert(field.into(), value);
            let err = Sample::from_row(r).unwrap_err().to_string();
            assert!(err.contains(want) && err.contains(field), "{field}: {err}");
        }
        let mut r = row(base);
        r.remove("n");
        assert!(Sample::from_row(r).unwrap_err().to_string().contains("missing field `n`"));
    }

    #[test]
    fn a_string_list_column_is_the_text_of_a_json_array() {
        let read = |v: Value| Vec::<String>::column(Some(v), "p");
        assert_eq!(read(json!(r#"["a","b"]"#)).unwrap(), ["a", "b"]);
        assert_eq!(read(json!("[]")).unwrap(), Vec::<String>::new());
        assert!(read(json!("[1]")).is_err());
        assert!(read(json!("a")).is_err());
        assert!(read(Value::Null).is_err());
        assert!(Vec::<String>::column(None, "p").is_err());
    }

    #[test]
    fn out_of_range_integers_are_refused() {
        assert!(i8::column(Some(json!(128)), "x").is_err());
        assert!(i8::column(Some(json!(-129)), "x").is_err());
        assert_eq!(i8::column(Some(json!(-128)), "x").unwrap(), -128);
        assert!(i32::column(Some(json!(2_147_483_648_i64)), "x").is_err());
        assert_eq!(i32::column(Some(json!(42)), "x").unwrap(), 42);
        assert!(i64::column(Some(json!(u64::MAX)), "x").is_err());
    }
}
