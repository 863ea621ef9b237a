//! SOAP on the wire: parsing a request body into a small element tree (namespace prefixes dropped), and
//! writing responses and faults the way vSphere does (HTTP 500 with `soapenv:Fault`, faultcode
//! `ServerFaultCode`, and the fault object in `detail` as `<NameFault xmlns="urn:vim25" xsi:type="Name">`).

use quick_xml::events::Event;
use quick_xml::Reader;

/// An XML element: local name, attributes (unprefixed ones by name, prefixed ones such as `xsi:type` with their
/// prefix, so that a reference's `type` and its `xsi:type` stay apart) and text, with its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of the first child called `name`.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    /// A managed object reference: (`type` attribute, id).
    pub fn moref(&self) -> (&str, &str) {
        (self.attr("type").unwrap_or_default(), self.text.trim())
    }
}

/// A parsed SOAP call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The body's first element, e.g. `Login`; its children are the parameters (`_this` included).
    pub call: Element,
}

impl Request {
    pub fn method(&self) -> &str {
        &self.call.name
    }

    /// The target object's (type, id).
    pub fn this(&self) -> (&str, &str) {
        self.call.child("_this").map(Element::moref).unwrap_or_default()
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.call.text_of(name)
    }

    /// Parses a SOAP envelope and finds the call in its Body.
    pub fn parse(xml: &[u8]) -> Result<Request, String> {
        let root = parse_tree(xml)?;
        if root.name != "Envelope" {
            return Err(format!("the document is a <{}>, not a SOAP Envelope", root.name));
        }
        let body = root.child("Body").ok_or("the SOAP Envelope has no Body")?;
        let call = body.children.first().ok_or("the SOAP Body is empty")?;
        Ok(Request { call: call.clone() })
    }
}

fn local(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    match name.rsplit_once(':') {
        Some((_, l)) => l.to_string(),
        None => name.into_owned(),
    }
}

/// Parses a document into its root element. Namespace declarations are dropped; prefixes are stripped from
/// element names.
pub fn parse_tree(xml: &[u8]) -> Result<Element, String> {
    let mut reader = Reader::from_reader(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut buf = Vec::new();
    let bad = |e: &dyn std::fmt::Display| format!("malformed XML: {e}");
    let open = |e: &quick_xml::events::BytesStart| -> Result<Element, String> {
        let mut el = Element { name: local(e.name().as_ref()), ..Element::default() };
        for a in e.attributes() {
            let a = a.map_err(|e| bad(&e))?;
            let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
            if key == "xmlns" || key.starts_with("xmlns:") {
                continue;
            }
            let value = a.unescape_value().map_err(|e| bad(&e))?.into_owned();
            el.attrs.push((key, value));
        }
        Ok(el)
    };
    loop {
        match reader.read_event_into(&mut buf).map_err(|e| bad(&e))? {
            Event::Start(e) => {
                let el = open(&e)?;
                stack.push(el);
            }
            Event::Empty(e) => {
                let el = open(&e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Ok(el),
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or("unbalanced end tag")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Ok(el),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.decode().map_err(|e| bad(&e))?);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    let name = r.decode().map_err(|e| bad(&e))?;
                    let ch = match r.resolve_char_ref().map_err(|e| bad(&e))? {
                        Some(c) => c,
                        None => match name.as_ref() {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "apos" => '\'',
                            "quot" => '"',
                            other => return Err(format!("malformed XML: unknown entity &{other};")),
                        },
                    };
                    top.text.push(ch);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::Eof => return Err("malformed XML: the document ends early".into()),
            _ => {}
        }
        buf.clear();
    }
}

/// Escapes text for element content and double-quoted attribute values (apostrophes stay, as vSphere's
/// fault strings have them).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// `<tag type="Type">id</tag>`.
pub fn moref(tag: &str, ty: &str, id: &str) -> String {
    format!("<{tag} type=\"{}\">{}</{tag}>", escape(ty), escape(id))
}

fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope \
         xmlns:soapenc=\"http://schemas.xmlsoap.org/soap/encoding/\" \
         xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n<soapenv:Body>\n{body}\n</soapenv:Body>\n\
         </soapenv:Envelope>"
    )
}

/// A successful response to `method`: `<methodResponse xmlns="urn:vim25">inner</methodResponse>`.
pub fn response(method: &str, inner: &str) -> String {
    envelope(&format!("<{method}Response xmlns=\"urn:vim25\">{inner}</{method}Response>"))
}

/// A vSphere fault: the fault type (`InvalidLogin`, …), the message and the fault object's fields (XML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: &'static str,
    pub message: String,
    pub fields: String,
}

impl Fault {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Fault { kind, message: message.into(), fields: String::new() }
    }

    pub fn with_fields(mut self, fields: String) -> Self {
        self.fields = fields;
        self
    }

    pub fn invalid_login() -> Self {
        Fault::new("InvalidLogin", "Cannot complete login due to an incorrect user name or password.")
    }

    pub fn not_authenticated(ty: &str, id: &str) -> Self {
        Fault::new("NotAuthenticated", "The session is not authenticated.")
            .with_fields(format!("{}<privilegeId>System.View</privilegeId>", moref("object", ty, id)))
    }

    pub fn object_not_found(ty: &str, id: &str) -> Self {
        Fault::new(
            "ManagedObjectNotFound",
            format!("The object 'vim.{ty}:{id}' has already been deleted or has not been completely created"),
        )
        .with_fields(moref("obj", ty, id))
    }

    pub fn invalid_argument(property: &str) -> Self {
        Fault::new("InvalidArgument", format!("A specified parameter was not correct: {property}"))
            .with_fields(format!("<invalidProperty>{}</invalidProperty>", escape(property)))
    }

    pub fn invalid_property(name: &str) -> Self {
        Fault::new("InvalidProperty", "").with_fields(format!("<name>{}</name>", escape(name)))
    }

    pub fn invalid_state() -> Self {
        Fault::new("InvalidState", "The operation is not allowed in the current state.")
    }

    /// A power operation on a VM in the wrong power state (`requested`: the state it needs).
    pub fn invalid_power_state(requested: &str, existing: &str) -> Self {
        let shown = if existing == "poweredOn" { "Powered on" } else { "Powered off" };
        Fault::new(
            "InvalidPowerState",
            format!("The attempted operation cannot be performed in the current state ({shown})."),
        )
        .with_fields(format!("<requestedState>{requested}</requestedState><existingState>{existing}</existingState>"))
    }

    /// Another task on the same object is still running.
    pub fn task_in_progress(task: &str) -> Self {
        Fault::new(
            "TaskInProgress",
            "The operation is not allowed in the current state because the virtual machine has a task in progress.",
        )
        .with_fields(moref("task", "Task", task))
    }

    /// A datastore file that does not exist (`file` as `[DATASTORE] path`).
    pub fn file_not_found(file: &str) -> Self {
        Fault::new("FileNotFound", format!("File {file} was not found"))
            .with_fields(format!("<file>{}</file>", escape(file)))
    }

    /// vSphere's catch-all fault; `reason` is also its message's end.
    pub fn system_error(reason: &str) -> Self {
        Fault::new("SystemError", format!("A general system error occurred: {reason}"))
            .with_fields(format!("<reason>{}</reason>", escape(reason)))
    }

    pub fn already_exists(name: &str) -> Self {
        Fault::new("AlreadyExists", format!("The specified key, name, or identifier '{name}' already exists."))
            .with_fields(format!("<name>{}</name>", escape(name)))
    }

    pub fn invalid_datastore_path(path: &str) -> Self {
        Fault::new("InvalidDatastorePath", format!("Invalid datastore path '{path}'."))
            .with_fields(format!("<datastorePath>{}</datastorePath>", escape(path)))
    }

    pub fn not_supported(what: &str) -> Self {
        Fault::new("NotSupported", format!("The operation is not supported on the object: {what}"))
    }

    pub fn invalid_request(why: &str) -> Self {
        Fault::new("InvalidRequest", why.to_string())
    }

    pub fn method_not_found(ty: &str, id: &str, method: &str) -> Self {
        Fault::new("MethodNotFound", format!("Method {method} not found on object {ty}:{id} (simulated subset)"))
            .with_fields(format!("{}<method>{}</method>", moref("receiver", ty, id), escape(method)))
    }

    /// The whole response document (sent with HTTP 500). No whitespace between the fault's elements: libvirt
    /// refuses text nodes there.
    pub fn to_xml(&self) -> String {
        let kind = self.kind;
        envelope(&format!(
            "<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>{}</faultstring><detail>\
             <{kind}Fault xmlns=\"urn:vim25\" xsi:type=\"{kind}\">{}</{kind}Fault></detail></soapenv:Fault>",
            escape(&self.message),
            self.fields
        ))
    }
}

/// The API version a client asked for in `SOAPAction: "urn:vim25/8.0.2.0"`, as comparable numbers; `None` if
/// the header is missing or names no version (vSphere then answers in its oldest dialect).
pub fn requested_version(soap_action: Option<&str>) -> Option<Vec<u32>> {
    let action = soap_action?.trim().trim_matches('"');
    parse_version(action.strip_prefix("urn:vim25/")?)
}

/// `7.0.3.1` as comparable numbers.
pub fn parse_version(version: &str) -> Option<Vec<u32>> {
    version.split('.').map(|p| p.parse().ok()).collect()
}

/// Whether `version` is at least `min` (missing trailing parts count as 0).
pub fn at_least(version: Option<&[u32]>, min: &[u32]) -> bool {
    let Some(v) = version else { return false };
    let n = v.len().max(min.len());
    let part = |s: &[u32], i: usize| s.get(i).copied().unwrap_or(0);
    (0..n).map(|i| part(v, i).cmp(&part(min, i))).find(|o| o.is_ne()) != Some(std::cmp::Ordering::Less)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What pyVmomi 9.1 sends for `vm.AcquireTicket('webmks')`.
    const PYVMOMI_ACQUIRE_TICKET: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><AcquireTicket xmlns="urn:vim25"><_this type="VirtualMachine">1</_this><ticketType xsi:type="xsd:string">webmks</ticketType></AcquireTicket></soapenv:Body>
</soapenv:Envelope>"#;

    #[test]
    fn parses_calls_with_prefixes_and_attributes() {
        let r = Request::parse(PYVMOMI_ACQUIRE_TICKET.as_bytes()).unwrap();
        assert_eq!(r.method(), "AcquireTicket");
        assert_eq!(r.this(), ("VirtualMachine", "1"));
        assert_eq!(r.param("ticketType"), Some("webmks"));
        assert_eq!(r.call.child("ticketType").unwrap().attr("xsi:type"), Some("xsd:string"));
    }

    #[test]
    fn parses_entities_and_nested_specs() {
        let xml = r#"<e:Envelope xmlns:e="x"><e:Body><Login><_this type="SessionManager">ha-sessionmgr</_this>
            <userName>root</userName><password>a&amp;b&#60;c&lt;</password>
            <x><y a="1"/><y a="2">t</y></x></Login></e:Body></e:Envelope>"#;
        let r = Request::parse(xml.as_bytes()).unwrap();
        assert_eq!(r.param("password"), Some("a&b<c<"));
        let ys: Vec<_> = r.call.child("x").unwrap().children("y").map(|y| y.attr("a").unwrap()).collect();
        assert_eq!(ys, ["1", "2"]);
        for bad in ["<a><b></a>", "<Envelope><Body/></Envelope>", "<nope/>", "<Envelope>"] {
            assert!(Request::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn faults_look_like_vsphere() {
        let xml = Fault::invalid_login().to_xml();
        assert!(xml.contains("<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>"));
        assert!(
            xml.contains("<faultstring>Cannot complete login due to an incorrect user name or password.</faultstring>")
        );
        assert!(xml.contains("<InvalidLoginFault xmlns=\"urn:vim25\" xsi:type=\"InvalidLogin\"></InvalidLoginFault>"));
        let tree = parse_tree(Fault::object_not_found("VirtualMachine", "7").to_xml().as_bytes()).unwrap();
        let detail = tree.child("Body").unwrap().child("Fault").unwrap().child("detail").unwrap();
        let fault = detail.child("ManagedObjectNotFoundFault").unwrap();
        assert_eq!(fault.attr("xsi:type"), Some("ManagedObjectNotFound"));
        assert_eq!(fault.child("obj").unwrap().moref(), ("VirtualMachine", "7"));
    }

    #[test]
    fn versions_from_soap_action() {
        let v = requested_version(Some("\"urn:vim25/7.0.3.1\""));
        assert_eq!(v.as_deref(), Some(&[7, 0, 3, 1][..]));
        assert!(at_least(v.as_deref(), &[7, 0]));
        assert!(at_least(v.as_deref(), &[7, 0, 3, 1]));
        assert!(!at_least(v.as_deref(), &[7, 0, 3, 2]));
        assert!(!at_least(requested_version(Some("urn:vim25/6.7")).as_deref(), &[7, 0]));
        assert!(at_least(requested_version(Some("urn:vim25/8.0")).as_deref(), &[7, 0, 3, 1]));
        assert_eq!(requested_version(Some("urn:vim25")), None);
        assert_eq!(requested_version(None), None);
        assert!(!at_least(None, &[7, 0]));
        assert_eq!(parse_version("6.7.3"), Some(vec![6, 7, 3]));
        assert_eq!(parse_version("6.x"), None);
    }
}
