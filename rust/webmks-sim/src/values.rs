//! Values as vSphere writes them where the schema says `anyType` (property values, task results): every element
//! carries its `xsi:type`, arrays are `ArrayOfX` whose items carry theirs too, and managed object references
//! also carry their `type` attribute. Strict clients (libvirt's esx driver) refuse values without a type.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::soap::escape;

/// A typed value: its `xsi:type`, extra attributes (` type="…"` of a reference) and escaped content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub xsi: String,
    attrs: String,
    pub inner: String,
}

impl Value {
    /// A value of complex type `xsi` whose fields are already written (`<a>…</a><b>…</b>`).
    pub fn object(xsi: &str, fields: String) -> Value {
        Value { xsi: xsi.to_string(), attrs: String::new(), inner: fields }
    }

    pub fn string(s: &str) -> Value {
        Value { xsi: "xsd:string".into(), attrs: String::new(), inner: escape(s) }
    }

    pub fn boolean(b: bool) -> Value {
        Value { xsi: "xsd:boolean".into(), attrs: String::new(), inner: b.to_string() }
    }

    pub fn int(i: i32) -> Value {
        Value { xsi: "xsd:int".into(), attrs: String::new(), inner: i.to_string() }
    }

    /// An enumeration value such as `VirtualMachinePowerState` `poweredOn`.
    pub fn enumeration(ty: &str, v: &str) -> Value {
        Value { xsi: ty.to_string(), attrs: String::new(), inner: escape(v) }
    }

    /// A managed object reference.
    pub fn moref(ty: &str, id: &str) -> Value {
        Value { xsi: "ManagedObjectReference".into(), attrs: format!(" type=\"{}\"", escape(ty)), inner: escape(id) }
    }

    /// `ArrayOfItem`: each value becomes an `<item xsi:type="…">` element (`string` items make an
    /// `ArrayOfString`).
    pub fn array(item: &str, values: &[Value]) -> Value {
        let inner = values.iter().map(|v| v.element(item)).collect();
        let mut chars = item.chars();
        let first = chars.next().map(|c| c.to_ascii_uppercase()).into_iter();
        Value { xsi: format!("ArrayOf{}", first.chain(chars).collect::<String>()), attrs: String::new(), inner }
    }

    /// The value as element `tag`: `<tag xsi:type="…" …>…</tag>`.
    pub fn element(&self, tag: &str) -> String {
        format!("<{tag} xsi:type=\"{}\"{}>{}</{tag}>", escape(&self.xsi), self.attrs, self.inner)
    }
}

/// `<tag>text</tag>` with the text escaped: a plain field of a complex value.
pub fn field(tag: &str, text: &str) -> String {
    format!("<{tag}>{}</{tag}>", escape(text))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC.
pub fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar, eras of 400 years).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn typed_elements() {
        assert_eq!(Value::string("a<b").element("val"), "<val xsi:type=\"xsd:string\">a&lt;b</val>");
        assert_eq!(
            Value::moref("VirtualMachine", "7").element("val"),
            "<val xsi:type=\"ManagedObjectReference\" type=\"VirtualMachine\">7</val>"
        );
        assert_eq!(
            Value::array("ManagedObjectReference", &[Value::moref("Task", "t1")]).element("val"),
            "<val xsi:type=\"ArrayOfManagedObjectReference\"><ManagedObjectReference \
             xsi:type=\"ManagedObjectReference\" type=\"Task\">t1</ManagedObjectReference></val>"
        );
        assert_eq!(
            Value::array("OptionValue", &[Value::object("OptionValue", field("key", "k"))]).element("val"),
            "<val xsi:type=\"ArrayOfOptionValue\"><OptionValue xsi:type=\"OptionValue\"><key>k</key></OptionValue></val>"
        );
        assert_eq!(Value::array("string", &[]).element("val"), "<val xsi:type=\"ArrayOfString\"></val>");
        assert_eq!(Value::int(-2147483647).inner, "-2147483647");
    }

    #[test]
    fn timestamps() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(UNIX_EPOCH + Duration::from_millis(951_782_400_123)), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601(UNIX_EPOCH + Duration::from_secs(1_767_225_599)), "2025-12-31T23:59:59.000Z");
    }
}
