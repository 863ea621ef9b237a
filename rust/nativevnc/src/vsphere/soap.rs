//! The vim25 SOAP messages this client sends and the parts of the answers it reads: request bodies are plain
//! functions of their arguments, responses are parsed from an [`Element`] tree. Nothing here does I/O.

use super::xml::{Element, Writer};
use super::{About, TicketError};

/// The API version asked for in `SOAPAction`. Servers omit fields newer than the version a client asks for:
/// `VirtualMachineTicket.url` needs 7.0 and `certThumbprintList` 7.0.3.1. Servers answer a newer version than
/// their own with their own (govmomi always sends its compiled-in version). 9.0 would replace `sslThumbprint`
/// by `sslCertificate`, so the request stays at 8.0.2.0.
pub(crate) const SOAP_ACTION: &str = "urn:vim25/8.0.2.0";

const ENVELOPE_START: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/""#,
    r#" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
    "<soapenv:Body>"
);
const ENVELOPE_END: &str = "</soapenv:Body></soapenv:Envelope>";

/// A complete request envelope: `<method xmlns="urn:vim25"><_this type="this_type">this</_this>…</method>`,
/// the parameters written by `params`.
fn request(method: &str, this_type: &str, this: &str, params: impl FnOnce(&mut Writer)) -> String {
    let mut w = Writer::default();
    w.start(method, &[("xmlns", "urn:vim25")]).element("_this", &[("type", this_type)], this);
    params(&mut w);
    w.end(method);
    format!("{ENVELOPE_START}{}{ENVELOPE_END}", w.finish())
}

pub(crate) fn retrieve_service_content() -> String {
    request("RetrieveServiceContent", "ServiceInstance", "ServiceInstance", |_| {})
}

pub(crate) fn login(session_manager: &str, user: &str, password: &str) -> String {
    request("Login", "SessionManager", session_manager, |w| {
        w.element("userName", &[], user).element("password", &[], password);
    })
}

pub(crate) fn logout(session_manager: &str) -> String {
    request("Logout", "SessionManager", session_manager, |_| {})
}

pub(crate) fn find_by_inventory_path(search_index: &str, path: &str) -> String {
    request("FindByInventoryPath", "SearchIndex", search_index, |w| {
        w.element("inventoryPath", &[], path);
    })
}

/// FindByUuid for a virtual machine's BIOS UUID (`vmSearch` true, `instanceUuid` left out).
pub(crate) fn find_by_uuid(search_index: &str, uuid: &str) -> String {
    request("FindByUuid", "SearchIndex", search_index, |w| {
        w.element("uuid", &[], uuid).element("vmSearch", &[], "true");
    })
}

/// A view of every virtual machine below `root_folder`.
pub(crate) fn create_container_view(view_manager: &str, root_folder: &str) -> String {
    request("CreateContainerView", "ViewManager", view_manager, |w| {
        w.element("container", &[("type", "Folder")], root_folder).element("type", &[], "VirtualMachine").element(
            "recursive",
            &[],
            "true",
        );
    })
}

/// The `name` of every virtual machine in the container view `view`.
pub(crate) fn retrieve_properties_ex(property_collector: &str, view: &str) -> String {
    request("RetrievePropertiesEx", "PropertyCollector", property_collector, |w| {
        w.start("specSet", &[])
            .start("propSet", &[])
            .element("type", &[], "VirtualMachine")
            .element("pathSet", &[], "name")
            .end("propSet")
            .start("objectSet", &[])
            .element("obj", &[("type", "ContainerView")], view)
            .element("skip", &[], "true")
            .start("selectSet", &[("xsi:type", "TraversalSpec")])
            .element("type", &[], "ContainerView")
            .element("path", &[], "view")
            .element("skip", &[], "false")
            .end("selectSet")
            .end("objectSet")
            .end("specSet")
            .start("options", &[])
            .end("options");
    })
}

pub(crate) fn continue_retrieve_properties_ex(property_collector: &str, token: &str) -> String {
    request("ContinueRetrievePropertiesEx", "PropertyCollector", property_collector, |w| {
        w.element("token", &[], token);
    })
}

pub(crate) fn destroy_view(view: &str) -> String {
    request("DestroyView", "ContainerView", view, |_| {})
}

pub(crate) fn acquire_ticket(vm: &str) -> String {
    request("AcquireTicket", "VirtualMachine", vm, |w| {
        w.element("ticketType", &[], "webmks");
    })
}

/// The method response inside the envelope of an answer with HTTP status `status`, or what went wrong: a
/// SOAP fault (whatever the status), an HTTP error without one, or a body that is not a SOAP envelope.
pub(crate) fn parse_response(status: u16, body: &str) -> Result<Element, TicketError> {
    let content = Element::parse(body)
        .ok()
        .filter(|root| root.name() == "Envelope")
        .and_then(|envelope| envelope.child("Body").and_then(Element::first_child).cloned());
    match content {
        Some(fault) if fault.name() == "Fault" => Err(parse_fault(&fault)),
        Some(response) if status == 200 => Ok(response),
        _ if status != 200 => Err(TicketError::Http { status, message: shorten(body) }),
        _ => Err(TicketError::Malformed(match Element::parse(body) {
            Err(e) => format!("the response is not XML: {e}"),
            Ok(_) => "the response is not a SOAP envelope with a body".to_owned(),
        })),
    }
}

/// Classifies a fault by the type of its detail: the `xsi:type` attribute, else the element's local name
/// without a trailing "Fault".
fn parse_fault(fault: &Element) -> TicketError {
    let code = fault.child_text("faultcode").unwrap_or_default().to_owned();
    let message = fault.child_text("faultstring").unwrap_or_default().to_owned();
    let kind = fault
        .child("detail")
        .and_then(Element::first_child)
        .map(|detail| match detail.attribute("type") {
            Some(xsi_type) => xsi_type.rsplit(':').next().unwrap_or(xsi_type).to_owned(),
            None => detail.name().strip_suffix("Fault").unwrap_or(detail.name()).to_owned(),
        })
        .unwrap_or_default();
    match kind.as_str() {
        "InvalidLogin" => TicketError::InvalidLogin,
        "ManagedObjectNotFound" => TicketError::NotCreated(message),
        "InvalidState" | "InvalidPowerState" => TicketError::PoweredOff(message),
        "NotAuthenticated" => TicketError::NotAuthenticated(message),
        _ => TicketError::Fault { code, fault: kind, message },
    }
}

/// The body text with white space runs collapsed, cut to about 200 characters.
pub(crate) fn shorten(body: &str) -> String {
    const MAX: usize = 200;
    let text = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The `returnval` of a method response, which must be there.
pub(crate) fn returnval(response: &Element) -> Result<&Element, TicketError> {
    response.child("returnval").ok_or_else(|| TicketError::Malformed(format!("{} without returnval", response.name())))
}

/// What this client needs from the ServiceContent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceContent {
    pub(crate) session_manager: String,
    pub(crate) search_index: String,
    pub(crate) view_manager: String,
    pub(crate) property_collector: String,
    pub(crate) root_folder: String,
    pub(crate) about: About,
}

pub(crate) fn parse_service_content(response: &Element) -> Result<ServiceContent, TicketError> {
    let content = returnval(response)?;
    let field = |name: &str| match content.child_text(name) {
        Some(moid) if !moid.is_empty() => Ok(moid.to_owned()),
        _ => Err(TicketError::Malformed(format!("the service content has no {name}"))),
    };
    Ok(ServiceContent {
        session_manager: field("sessionManager")?,
        search_index: field("searchIndex")?,
        view_manager: field("viewManager")?,
        property_collector: field("propertyCollector")?,
        root_folder: field("rootFolder")?,
        about: content.child("about").map(parse_about).unwrap_or_default(),
    })
}

fn parse_about(about: &Element) -> About {
    let text = |name: &str| about.child_text(name).unwrap_or_default().to_owned();
    About {
        full_name: text("fullName"),
        version: text("version"),
        api_version: text("apiVersion"),
        api_type: text("apiType"),
        product_line_id: text("productLineId"),
    }
}

/// A Login response must carry the UserSession.
pub(crate) fn parse_login(response: &Element) -> Result<(), TicketError> {
    returnval(response).map(drop)
}

/// The virtual machine a FindBy* call found, if any (a folder or host found by a path does not count).
pub(crate) fn parse_found_vm(response: &Element) -> Option<String> {
    response
        .child("returnval")
        .filter(|found| found.attribute("type") == Some("VirtualMachine") && !found.text().is_empty())
        .map(|found| found.text().to_owned())
}

/// The managed object id in `returnval`.
pub(crate) fn parse_moref(response: &Element) -> Result<String, TicketError> {
    match returnval(response)?.text() {
        "" => Err(TicketError::Malformed(format!("{} returned an empty object reference", response.name()))),
        moid => Ok(moid.to_owned()),
    }
}

/// One page of RetrievePropertiesEx results: `(moid, name)` of each object, and the token for the next page.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct NamePage {
    pub(crate) objects: Vec<(String, String)>,
    pub(crate) token: Option<String>,
}

/// RetrievePropertiesEx and ContinueRetrievePropertiesEx both return a RetrieveResult, or nothing when no
/// object matched.
pub(crate) fn parse_name_page(response: &Element) -> NamePage {
    let Some(result) = response.child("returnval") else { return NamePage::default() };
    let objects = result
        .children("objects")
        .filter_map(|object| {
            let moid = object.child_text("obj")?;
            let name = object.children("propSet").find(|prop| prop.child_text("name") == Some("name"))?;
            Some((moid.to_owned(), name.child_text("val")?.to_owned()))
        })
        .collect();
    let token = result.child_text("token").filter(|token| !token.is_empty()).map(str::to_owned);
    NamePage { objects, token }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn envelope(body: &str) -> String {
        format!("{ENVELOPE_START}{body}{ENVELOPE_END}")
    }

    /// A response as ESXi writes it.
    pub(crate) fn response(body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/"
 xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:xsd="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body>
{body}
</soapenv:Body>
</soapenv:Envelope>"#
        )
    }

    fn ok(body: &str) -> Element {
        parse_response(200, &response(body)).unwrap()
    }

    #[test]
    fn request_envelope_is_exact() {
        assert_eq!(
            retrieve_service_content(),
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope"#,
                r#" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/""#,
                r#" xmlns:xsd="http://www.w3.org/2001/XMLSchema""#,
                r#" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>"#,
                r#"<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this>"#,
                r#"</RetrieveServiceContent></soapenv:Body></soapenv:Envelope>"#
            )
        );
    }

    #[test]
    fn login_escapes_user_and_password() {
        assert_eq!(
            login("ha-sessionmgr", "dom\\r<o>ot&", "p\"a'ss<&>"),
            envelope(concat!(
                r#"<Login xmlns="urn:vim25"><_this type="SessionManager">ha-sessionmgr</_this>"#,
                r#"<userName>dom\r&lt;o&gt;ot&amp;</userName><password>p&quot;a&apos;ss&lt;&amp;&gt;</password>"#,
                r#"</Login>"#
            ))
        );
    }

    #[test]
    fn logout_request() {
        assert_eq!(
            logout("SessionManager"),
            envelope(r#"<Logout xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this></Logout>"#)
        );
    }

    #[test]
    fn find_requests() {
        assert_eq!(
            find_by_inventory_path("ha-searchindex", "ha-datacenter/vm/a&b"),
            envelope(concat!(
                r#"<FindByInventoryPath xmlns="urn:vim25"><_this type="SearchIndex">ha-searchindex</_this>"#,
                r#"<inventoryPath>ha-datacenter/vm/a&amp;b</inventoryPath></FindByInventoryPath>"#
            ))
        );
        assert_eq!(
            find_by_uuid("SearchIndex", "4217a1b2-0000-1111-2222-333344445555"),
            envelope(concat!(
                r#"<FindByUuid xmlns="urn:vim25"><_this type="SearchIndex">SearchIndex</_this>"#,
                r#"<uuid>4217a1b2-0000-1111-2222-333344445555</uuid><vmSearch>true</vmSearch></FindByUuid>"#
            ))
        );
    }

    #[test]
    fn container_view_requests() {
        assert_eq!(
            create_container_view("ViewManager", "group-d1"),
            envelope(concat!(
                r#"<CreateContainerView xmlns="urn:vim25"><_this type="ViewManager">ViewManager</_this>"#,
                r#"<container type="Folder">group-d1</container><type>VirtualMachine</type>"#,
                r#"<recursive>true</recursive></CreateContainerView>"#
            ))
        );
        assert_eq!(
            retrieve_properties_ex("propertyCollector", "session[52a1]52b2"),
            envelope(concat!(
                r#"<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this>"#,
                r#"<specSet><propSet><type>VirtualMachine</type><pathSet>name</pathSet></propSet>"#,
                r#"<objectSet><obj type="ContainerView">session[52a1]52b2</obj><skip>true</skip>"#,
                r#"<selectSet xsi:type="TraversalSpec"><type>ContainerView</type><path>view</path>"#,
                r#"<skip>false</skip></selectSet></objectSet></specSet><options></options></RetrievePropertiesEx>"#
            ))
        );
        assert_eq!(
            continue_retrieve_properties_ex("ha-property-collector", "1"),
            envelope(concat!(
                r#"<ContinueRetrievePropertiesEx xmlns="urn:vim25">"#,
                r#"<_this type="PropertyCollector">ha-property-collector</_this><token>1</token>"#,
                r#"</ContinueRetrievePropertiesEx>"#
            ))
        );
        assert_eq!(
            destroy_view("session[52a1]52b2"),
            envelope(concat!(
                r#"<DestroyView xmlns="urn:vim25"><_this type="ContainerView">session[52a1]52b2</_this>"#,
                r#"</DestroyView>"#
            ))
        );
    }

    #[test]
    fn acquire_ticket_request() {
        assert_eq!(
            acquire_ticket("vm-42"),
            envelope(concat!(
                r#"<AcquireTicket xmlns="urn:vim25"><_this type="VirtualMachine">vm-42</_this>"#,
                r#"<ticketType>webmks</ticketType></AcquireTicket>"#
            ))
        );
    }

    pub(crate) const ESXI_SERVICE_CONTENT: &str = r#"<RetrieveServiceContentResponse xmlns="urn:vim25">
<returnval>
<rootFolder type="Folder">ha-folder-root</rootFolder>
<propertyCollector type="PropertyCollector">ha-property-collector</propertyCollector>
<viewManager type="ViewManager">ViewManager</viewManager>
<about><name>VMware ESXi</name><fullName>VMware ESXi 8.0.2 build-22380479</fullName><vendor>VMware, Inc.</vendor>
<version>8.0.2</version><build>22380479</build><apiType>HostAgent</apiType><apiVersion>8.0.2.0</apiVersion></about>
<setting type="OptionManager">HostAgentSettings</setting>
<userDirectory type="UserDirectory">ha-user-directory</userDirectory>
<sessionManager type="SessionManager">ha-sessionmgr</sessionManager>
<authorizationManager type="AuthorizationManager">ha-authmgr</authorizationManager>
<searchIndex type="SearchIndex">ha-searchindex</searchIndex>
</returnval>
</RetrieveServiceContentResponse>"#;

    #[test]
    fn parses_esxi_service_content() {
        assert_eq!(
            parse_service_content(&ok(ESXI_SERVICE_CONTENT)).unwrap(),
            ServiceContent {
                session_manager: "ha-sessionmgr".into(),
                search_index: "ha-searchindex".into(),
                view_manager: "ViewManager".into(),
                property_collector: "ha-property-collector".into(),
                root_folder: "ha-folder-root".into(),
                about: About {
                    full_name: "VMware ESXi 8.0.2 build-22380479".into(),
                    version: "8.0.2".into(),
                    api_version: "8.0.2.0".into(),
                    api_type: "HostAgent".into(),
                    product_line_id: String::new(),
                },
            }
        );
    }

    #[test]
    fn parses_vcenter_service_content() {
        let body = r#"<RetrieveServiceContentResponse xmlns="urn:vim25"><returnval>
<rootFolder type="Folder">group-d1</rootFolder><propertyCollector type="PropertyCollector">propertyCollector</propertyCollector>
<viewManager type="ViewManager">ViewManager</viewManager>
<about><name>VMware vCenter Server</name><apiType>VirtualCenter</apiType><apiVersion>8.0.3.0</apiVersion></about>
<sessionManager type="SessionManager">SessionManager</sessionManager><searchIndex type="SearchIndex">SearchIndex</searchIndex>
</returnval></RetrieveServiceContentResponse>"#;
        let content = parse_service_content(&ok(body)).unwrap();
        assert_eq!(content.session_manager, "SessionManager");
        assert_eq!(content.search_index, "SearchIndex");
        assert_eq!(content.property_collector, "propertyCollector");
        assert_eq!(content.root_folder, "group-d1");
        assert_eq!(content.about.api_type, "VirtualCenter");
        assert_eq!(content.about.api_version, "8.0.3.0");
        let e = parse_service_content(&ok(&body.replace("sessionManager", "other"))).unwrap_err();
        assert_eq!(e, TicketError::Malformed("the service content has no sessionManager".into()));
    }

    #[test]
    fn parses_user_session() {
        let body = r#"<LoginResponse xmlns="urn:vim25"><returnval><key>52b0c8e4-8d0a-1f3b</key><userName>root</userName>
<fullName>Administrator</fullName><loginTime>2024-05-01T10:00:00.000Z</loginTime><locale>en</locale>
<messageLocale>en</messageLocale><extensionSession>false</extensionSession><ipAddress>10.0.0.2</ipAddress>
<userAgent>nativevnc/0.1.0</userAgent><callCount>0</callCount></returnval></LoginResponse>"#;
        assert_eq!(parse_login(&ok(body)), Ok(()));
        assert_eq!(
            parse_login(&ok(r#"<LoginResponse xmlns="urn:vim25"></LoginResponse>"#)),
            Err(TicketError::Malformed("LoginResponse without returnval".into()))
        );
    }

    #[test]
    fn parses_find_results() {
        let found =
            ok(r#"<FindByInventoryPathResponse xmlns="urn:vim25"><returnval type="VirtualMachine">1</returnval>
</FindByInventoryPathResponse>"#);
        assert_eq!(parse_found_vm(&found), Some("1".into()));
        let found = ok(r#"<FindByUuidResponse xmlns="urn:vim25"><returnval type="VirtualMachine">vm-42</returnval>
</FindByUuidResponse>"#);
        assert_eq!(parse_found_vm(&found), Some("vm-42".into()));
        assert_eq!(parse_found_vm(&ok(r#"<FindByUuidResponse xmlns="urn:vim25"></FindByUuidResponse>"#)), None);
        assert_eq!(parse_found_vm(&ok(r#"<FindByInventoryPathResponse xmlns="urn:vim25"/>"#)), None);
        let folder =
            ok(r#"<FindByInventoryPathResponse xmlns="urn:vim25"><returnval type="Folder">ha-folder-vm</returnval>
</FindByInventoryPathResponse>"#);
        assert_eq!(parse_found_vm(&folder), None);
    }

    #[test]
    fn parses_container_view() {
        let view = ok(r#"<CreateContainerViewResponse xmlns="urn:vim25">
<returnval type="ContainerView">session[52e8]52a1</returnval></CreateContainerViewResponse>"#);
        assert_eq!(parse_moref(&view), Ok("session[52e8]52a1".into()));
        assert!(matches!(
            parse_moref(&ok(r#"<CreateContainerViewResponse xmlns="urn:vim25"/>"#)),
            Err(TicketError::Malformed(_))
        ));
    }

    pub(crate) fn name_objects(objects: &[(&str, &str)]) -> String {
        objects
            .iter()
            .map(|(moid, name)| {
                format!(
                    r#"<objects><obj type="VirtualMachine">{moid}</obj><propSet><name>name</name>
<val xsi:type="xsd:string">{name}</val></propSet></objects>"#
                )
            })
            .collect()
    }

    #[test]
    fn parses_retrieve_results_with_paging() {
        let first = ok(&format!(
            r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>1</token>{}</returnval>
</RetrievePropertiesExResponse>"#,
            name_objects(&[("1", "alpha"), ("2", "beta &amp; gamma")])
        ));
        assert_eq!(
            parse_name_page(&first),
            NamePage {
                objects: vec![("1".into(), "alpha".into()), ("2".into(), "beta & gamma".into())],
                token: Some("1".into())
            }
        );
        let last = ok(&format!(
            r#"<ContinueRetrievePropertiesExResponse xmlns="urn:vim25"><returnval>{}</returnval>
</ContinueRetrievePropertiesExResponse>"#,
            name_objects(&[("3", "delta")])
        ));
        assert_eq!(parse_name_page(&last), NamePage { objects: vec![("3".into(), "delta".into())], token: None });
        let none = ok(r#"<RetrievePropertiesExResponse xmlns="urn:vim25"></RetrievePropertiesExResponse>"#);
        assert_eq!(parse_name_page(&none), NamePage::default());
    }

    fn fault(detail: &str, message: &str) -> TicketError {
        let body = response(&format!(
            r#"<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>{message}</faultstring>
<detail>{detail}</detail></soapenv:Fault>"#
        ));
        parse_response(500, &body).unwrap_err()
    }

    #[test]
    fn classifies_faults() {
        assert_eq!(
            fault(
                r#"<InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault>"#,
                "Cannot complete login due to an incorrect user name or password."
            ),
            TicketError::InvalidLogin
        );
        assert_eq!(fault(r#"<InvalidLoginFault xmlns="urn:vim25"/>"#, "x"), TicketError::InvalidLogin);
        let gone = "The object 'vim.VirtualMachine:vm-7' has already been deleted or has not been completely created";
        assert_eq!(
            fault(
                r#"<ManagedObjectNotFoundFault xmlns="urn:vim25" xsi:type="ManagedObjectNotFound">
<obj type="VirtualMachine">vm-7</obj></ManagedObjectNotFoundFault>"#,
                gone
            ),
            TicketError::NotCreated(gone.into())
        );
        assert_eq!(
            fault(
                r#"<InvalidStateFault xmlns="urn:vim25" xsi:type="InvalidState"></InvalidStateFault>"#,
                "The operation is not allowed in the current state."
            ),
            TicketError::PoweredOff("The operation is not allowed in the current state.".into())
        );
        assert_eq!(
            fault(r#"<InvalidPowerStateFault xmlns="urn:vim25" xsi:type="vim25:InvalidPowerState"/>"#, "off"),
            TicketError::PoweredOff("off".into())
        );
        assert_eq!(
            fault(
                r#"<NotAuthenticatedFault xmlns="urn:vim25" xsi:type="NotAuthenticated"><object type="Folder">
ha-folder-root</object><privilegeId>System.View</privilegeId></NotAuthenticatedFault>"#,
                "The session is not authenticated."
            ),
            TicketError::NotAuthenticated("The session is not authenticated.".into())
        );
        assert_eq!(
            fault(r#"<NoPermissionFault xmlns="urn:vim25" xsi:type="NoPermission"/>"#, "Permission to perform"),
            TicketError::Fault {
                code: "ServerFaultCode".into(),
                fault: "NoPermission".into(),
                message: "Permission to perform".into()
            }
        );
        let no_detail = response(
            r#"<soapenv:Fault><faultcode>soapenv:VersionMismatch</faultcode><faultstring>Unsupported version URI
</faultstring></soapenv:Fault>"#,
        );
        assert_eq!(
            parse_response(500, &no_detail).unwrap_err(),
            TicketError::Fault {
                code: "soapenv:VersionMismatch".into(),
                fault: String::new(),
                message: "Unsupported version URI".into()
            }
        );
    }

    #[test]
    fn http_error_without_fault() {
        let html = format!(
            "<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>\n<body>{}</body></html>",
            "x".repeat(500)
        );
        let TicketError::Http { status, message } = parse_response(503, &html).unwrap_err() else {
            panic!("not an HTTP error")
        };
        assert_eq!(status, 503);
        assert!(message.starts_with("<!DOCTYPE html> <html><head><title>503 Service Unavailable</title>"), "{message}");
        assert_eq!(message.chars().count(), 201);
        assert_eq!(parse_response(404, ""), Err(TicketError::Http { status: 404, message: String::new() }));
    }

    #[test]
    fn malformed_responses() {
        let e = parse_response(200, "<soapenv:Envelope><soapenv:Body><x></soapenv:Body>").unwrap_err();
        assert!(e.to_string().starts_with("unexpected response: the response is not XML: "), "{e}");
        assert_eq!(
            parse_response(200, "<html>ok</html>"),
            Err(TicketError::Malformed("the response is not a SOAP envelope with a body".into()))
        );
    }
}
