//! Just enough XML for SOAP: a writer that escapes every value it is given, and a small owned element tree
//! that knows only local names, so it does not care which prefixes a server binds to which namespaces.

use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// An XML fragment under construction. Element and attribute names are the caller's literals; attribute
/// values and text are escaped.
#[derive(Default)]
pub(crate) struct Writer {
    xml: String,
}

impl Writer {
    /// `<name a="v" …>`
    pub(crate) fn start(&mut self, name: &str, attributes: &[(&str, &str)]) -> &mut Self {
        self.xml.push('<');
        self.xml.push_str(name);
        for (key, value) in attributes {
            self.xml.push(' ');
            self.xml.push_str(key);
            self.xml.push_str("=\"");
            self.xml.push_str(&escape(*value));
            self.xml.push('"');
        }
        self.xml.push('>');
        self
    }

    /// `</name>`
    pub(crate) fn end(&mut self, name: &str) -> &mut Self {
        self.xml.push_str("</");
        self.xml.push_str(name);
        self.xml.push('>');
        self
    }

    /// `<name a="v" …>text</name>`
    pub(crate) fn element(&mut self, name: &str, attributes: &[(&str, &str)], text: &str) -> &mut Self {
        self.start(name, attributes);
        self.xml.push_str(&escape(text));
        self.end(name)
    }

    pub(crate) fn finish(self) -> String {
        self.xml
    }
}

/// An element with its local name, attributes (by local name, unescaped), child elements and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    children: Vec<Element>,
    text: String,
}

impl Element {
    /// Parses a document and returns its root element. Whatever follows the root is not looked at.
    pub(crate) fn parse(xml: &str) -> Result<Element, String> {
        let mut reader = Reader::from_str(xml);
        let mut open: Vec<Element> = Vec::new();
        loop {
            let event = reader.read_event().map_err(|e| format!("{e} at byte {}", reader.error_position()))?;
            let closed = match event {
                Event::Start(start) => {
                    open.push(Element::open(&start)?);
                    None
                }
                Event::Empty(start) => Some(Element::open(&start)?),
                Event::End(_) => open.pop(),
                Event::Text(text) => {
                    let text = text.xml_content().map_err(|e| e.to_string())?;
                    append_text(&mut open, &text);
                    None
                }
                Event::CData(data) => {
                    let text = data.xml_content().map_err(|e| e.to_string())?;
                    append_text(&mut open, &text);
                    None
                }
                Event::GeneralRef(reference) => {
                    let resolved = match reference.resolve_char_ref().map_err(|e| e.to_string())? {
                        Some(c) => c.to_string(),
                        None => {
                            let name = reference.decode().map_err(|e| e.to_string())?;
                            resolve_predefined_entity(&name).ok_or(format!("unknown entity &{name};"))?.to_owned()
                        }
                    };
                    append_text(&mut open, &resolved);
                    None
                }
                Event::Eof => return Err("the document ends before its root element does".to_owned()),
                _ => None,
            };
            if let Some(element) = closed {
                match open.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => return Ok(element),
                }
            }
        }
    }

    fn open(start: &BytesStart) -> Result<Element, String> {
        let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
        let attributes = start
            .attributes()
            .map(|attribute| {
                let attribute = attribute.map_err(|e| e.to_string())?;
                let key = String::from_utf8_lossy(attribute.key.local_name().as_ref()).into_owned();
                let value = attribute.unescape_value().map_err(|e| e.to_string())?.into_owned();
                Ok((key, value))
            })
            .collect::<Result<_, String>>()?;
        Ok(Element { name, attributes, children: Vec::new(), text: String::new() })
    }

    /// The local name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The value of the attribute with this local name.
    pub(crate) fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// The first child with this local name.
    pub(crate) fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    /// All children with this local name.
    pub(crate) fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |child| child.name == name)
    }

    /// The first child element, whatever its name.
    pub(crate) fn first_child(&self) -> Option<&Element> {
        self.children.first()
    }

    /// The text directly inside this element, without surrounding white space.
    pub(crate) fn text(&self) -> &str {
        self.text.trim()
    }

    /// The text of the first child with this local name.
    pub(crate) fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(Element::text)
    }
}

fn append_text(open: &mut [Element], text: &str) {
    if let Some(element) = open.last_mut() {
        element.text.push_str(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_escapes_values_but_not_names() {
        let mut w = Writer::default();
        w.start("a", &[("x", "1\"<2>&'")]).element("b", &[], "<&>\"'").end("a");
        assert_eq!(w.finish(), r#"<a x="1&quot;&lt;2&gt;&amp;&apos;"><b>&lt;&amp;&gt;&quot;&apos;</b></a>"#);
    }

    #[test]
    fn parses_local_names_text_entities_and_attributes() {
        let root = Element::parse(
            r#"<?xml version="1.0"?>
            <s:Envelope xmlns:s="urn:s" xmlns:x="urn:x"><s:Body>
              <r x:type="T&amp;U">a &lt;b&gt; &#x41;<![CDATA[<c>]]></r><e/><r>second</r>
            </s:Body></s:Envelope>trailing"#,
        )
        .unwrap();
        assert_eq!(root.name(), "Envelope");
        let body = root.child("Body").unwrap();
        let r = body.child("r").unwrap();
        assert_eq!(r.attribute("type"), Some("T&U"));
        assert_eq!(r.text(), "a <b> A<c>");
        assert_eq!(body.children("r").count(), 2);
        assert_eq!(body.child_text("e"), Some(""));
        assert_eq!(body.first_child().map(Element::name), Some("r"));
        assert_eq!(body.child("missing"), None);
    }

    #[test]
    fn rejects_broken_documents() {
        for xml in ["", "<a><b></a>", "<a>", "<a>&nbsp;</a>", "not xml"] {
            assert!(Element::parse(xml).is_err(), "{xml:?}");
        }
    }
}
