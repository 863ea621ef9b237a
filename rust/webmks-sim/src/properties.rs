//! The PropertyCollector subset: container views over the VMs, `RetrievePropertiesEx` (with paging through
//! `ContinueRetrievePropertiesEx`), `RetrieveProperties`, and the `Fetch` accessor pyVmomi uses for
//! `vm.name` and `view.view`.

use std::collections::HashMap;

use crate::inventory::{Inventory, Vm};
use crate::sessions::random_hex;
use crate::soap::{escape, moref, Element, Fault};

/// A container view: the VMs it shows and the session that made it.
#[derive(Debug, Clone)]
struct View {
    vms: Vec<usize>,
}

/// Open container views and unfinished property retrievals.
#[derive(Debug, Default)]
pub struct Views {
    views: HashMap<String, View>,
    pages: HashMap<String, Vec<String>>,
}

/// The managed objects the collector knows.
enum Object<'a> {
    Vm(&'a Vm),
    View(Vec<usize>),
}

impl Views {
    /// `CreateContainerView` on the root folder: a view of every VM when `types` is empty or names
    /// VirtualMachine, of nothing otherwise. Returns the view's moid.
    pub fn create(&mut self, inventory: &Inventory, session_key: &str, types: &[&str]) -> String {
        let all = types.is_empty() || types.contains(&"VirtualMachine") || types.contains(&"ManagedEntity");
        let vms = if all { (0..inventory.vms.len()).collect() } else { Vec::new() };
        let id = format!("session[{session_key}]{}", random_hex(16));
        self.views.insert(id.clone(), View { vms });
        id
    }

    pub fn destroy(&mut self, id: &str) -> bool {
        self.views.remove(id).is_some()
    }

    fn object<'a>(&self, inventory: &'a Inventory, ty: &str, id: &'a str) -> Result<Object<'a>, Fault> {
        match ty {
            "VirtualMachine" => inventory.by_moid(id).map(Object::Vm),
            "ContainerView" => self.views.get(id).map(|v| Object::View(v.vms.clone())),
            _ => None,
        }
        .ok_or_else(|| Fault::object_not_found(ty, id))
    }

    /// `Fetch(prop)` on an object: the `returnval` elements.
    pub fn fetch(&self, inventory: &Inventory, ty: &str, id: &str, prop: &str) -> Result<String, Fault> {
        match (self.object(inventory, ty, id)?, prop) {
            (Object::Vm(vm), _) => {
                let (xsi, value) = vm_property(vm, prop).ok_or_else(|| Fault::invalid_property(prop))?;
                Ok(format!("<returnval xsi:type=\"{xsi}\">{value}</returnval>"))
            }
            (Object::View(vms), "view") => {
                Ok(vms.iter().map(|&i| moref("returnval", "VirtualMachine", &inventory.vms[i].moid)).collect())
            }
            (Object::View(..), _) => Err(Fault::invalid_property(prop)),
        }
    }

    /// `RetrievePropertiesEx`/`RetrieveProperties`: the `objects` elements of every object the spec selects,
    /// at most `max_objects` of them now; the rest are kept under the returned token.
    pub fn retrieve(
        &mut self,
        inventory: &Inventory,
        call: &Element,
        max_objects: Option<usize>,
    ) -> Result<(Vec<String>, Option<String>), Fault> {
        let mut objects = Vec::new();
        for spec in call.children("specSet") {
            let props: Vec<&Element> = spec.children("propSet").collect();
            for set in spec.children("objectSet") {
                let obj = set.child("obj").ok_or_else(|| Fault::invalid_argument("specSet.objectSet.obj"))?;
                let (ty, id) = obj.moref();
                let root = self.object(inventory, ty, id)?;
                let mut selected = Vec::new();
                if set.text_of("skip") != Some("true") {
                    selected.push((ty.to_string(), id.to_string()));
                }
                if let Object::View(vms) = &root {
                    let traverses_view = set
                        .children("selectSet")
                        .any(|s| s.text_of("type") == Some("ContainerView") && s.text_of("path") == Some("view"));
                    if traverses_view {
                        selected.extend(vms.iter().map(|&i| ("VirtualMachine".into(), inventory.vms[i].moid.clone())));
                    }
                }
                for (ty, id) in selected {
                    if let Some(xml) = self.object_content(inventory, &props, &ty, &id)? {
                        objects.push(xml);
                    }
                }
            }
        }
        let rest = match max_objects {
            Some(n) if n > 0 && objects.len() > n => objects.split_off(n),
            _ => Vec::new(),
        };
        let token = (!rest.is_empty()).then(|| {
            let token = random_hex(8);
            self.pages.insert(token.clone(), rest);
            token
        });
        Ok((objects, token))
    }

    /// `ContinueRetrievePropertiesEx(token)`: the next page (everything left).
    pub fn continue_retrieve(&mut self, token: &str) -> Result<Vec<String>, Fault> {
        self.pages.remove(token).ok_or_else(|| Fault::invalid_argument("token"))
    }

    pub fn cancel_retrieve(&mut self, token: &str) {
        self.pages.remove(token);
    }

    fn object_content(
        &self,
        inventory: &Inventory,
        props: &[&Element],
        ty: &str,
        id: &str,
    ) -> Result<Option<String>, Fault> {
        let Some(set) = props.iter().find(|p| p.text_of("type") == Some(ty)) else {
            return Ok(None);
        };
        let mut paths: Vec<&str> = set.children("pathSet").map(|p| p.text.trim()).collect();
        if set.text_of("all") == Some("true") {
            paths = match ty {
                "VirtualMachine" => VM_PROPERTIES.to_vec(),
                _ => vec!["view"],
            };
        }
        let mut xml = moref("obj", ty, id);
        for path in paths {
            let (xsi, value) = match self.object(inventory, ty, id)? {
                Object::Vm(vm) => vm_property(vm, path).ok_or_else(|| Fault::invalid_property(path))?,
                Object::View(vms) if path == "view" => (
                    "ArrayOfManagedObjectReference",
                    vms.iter()
                        .map(|&i| {
                            format!(
                                "<ManagedObjectReference type=\"VirtualMachine\" \
                                 xsi:type=\"ManagedObjectReference\">{}</ManagedObjectReference>",
                                escape(&inventory.vms[i].moid)
                            )
                        })
                        .collect(),
                ),
                Object::View(..) => return Err(Fault::invalid_property(path)),
            };
            xml.push_str(&format!(
                "<propSet><name>{}</name><val xsi:type=\"{xsi}\">{value}</val></propSet>",
                escape(path)
            ));
        }
        Ok(Some(format!("<objects>{xml}</objects>")))
    }
}

/// The VM properties the simulator serves.
const VM_PROPERTIES: [&str; 4] = ["name", "config.name", "config.uuid", "runtime.powerState"];

/// A VM property's xsi:type and escaped value.
fn vm_property(vm: &Vm, path: &str) -> Option<(&'static str, String)> {
    Some(match path {
        "name" | "config.name" => ("xsd:string", escape(&vm.name)),
        "config.uuid" => ("xsd:string", escape(&vm.uuid)),
        "runtime.powerState" => {
            ("VirtualMachinePowerState", if vm.powered_on { "poweredOn" } else { "poweredOff" }.to_string())
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{parse_vm_spec, Flavour};
    use crate::soap::Request;

    fn inventory() -> Inventory {
        let specs = ["a", "b,power=off", "c"].map(|s| parse_vm_spec(s).unwrap());
        Inventory::new(Flavour::Esxi, &specs).unwrap()
    }

    /// govmomi's `view.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name"}, &vms)` request shape.
    fn retrieve_call(view: &str, skip: bool, paths: &str) -> Element {
        let xml = format!(
            r#"<Envelope><Body><RetrievePropertiesEx xmlns="urn:vim25">
            <_this type="PropertyCollector">ha-property-collector</_this><specSet>
            <propSet><type>VirtualMachine</type>{paths}</propSet>
            <objectSet><obj type="ContainerView">{view}</obj><skip>{skip}</skip>
            <selectSet xsi:type="TraversalSpec"><type>ContainerView</type><path>view</path><skip>false</skip></selectSet>
            </objectSet></specSet><options><maxObjects>2</maxObjects></options></RetrievePropertiesEx></Body></Envelope>"#
        );
        Request::parse(xml.as_bytes()).unwrap().call
    }

    #[test]
    fn container_view_names_with_paging() {
        let inv = inventory();
        let mut views = Views::default();
        let id = views.create(&inv, "52ab", &["VirtualMachine"]);
        assert!(id.starts_with("session[52ab]"));
        let call = retrieve_call(&id, true, "<pathSet>name</pathSet>");
        let (first, token) = views.retrieve(&inv, &call, Some(2)).unwrap();
        assert_eq!(first.len(), 2);
        assert_eq!(
            first[0],
            "<objects><obj type=\"VirtualMachine\">1</obj><propSet><name>name</name>\
             <val xsi:type=\"xsd:string\">a</val></propSet></objects>"
        );
        let rest = views.continue_retrieve(&token.unwrap()).unwrap();
        assert_eq!(rest.len(), 1);
        assert!(rest[0].contains(">c</val>"));
        let (all, token) = views.retrieve(&inv, &retrieve_call(&id, false, "<all>true</all>"), None).unwrap();
        assert_eq!((all.len(), token), (3, None), "the view itself has no VirtualMachine propSet");
        assert!(all[1].contains("<val xsi:type=\"VirtualMachinePowerState\">poweredOff</val>"));
        let bad = views.retrieve(&inv, &retrieve_call(&id, true, "<pathSet>colour</pathSet>"), None);
        assert_eq!(bad.unwrap_err().kind, "InvalidProperty");
        assert!(views.destroy(&id));
        assert_eq!(views.retrieve(&inv, &call, None).unwrap_err().kind, "ManagedObjectNotFound");
    }

    #[test]
    fn fetch() {
        let inv = inventory();
        let mut views = Views::default();
        let id = views.create(&inv, "k", &[]);
        assert_eq!(
            views.fetch(&inv, "ContainerView", &id, "view").unwrap(),
            "<returnval type=\"VirtualMachine\">1</returnval><returnval type=\"VirtualMachine\">2</returnval>\
             <returnval type=\"VirtualMachine\">3</returnval>"
        );
        assert_eq!(
            views.fetch(&inv, "VirtualMachine", "2", "name").unwrap(),
            "<returnval xsi:type=\"xsd:string\">b</returnval>"
        );
        assert_eq!(views.fetch(&inv, "VirtualMachine", "9", "name").unwrap_err().kind, "ManagedObjectNotFound");
        let none = views.create(&inv, "k", &["HostSystem"]);
        assert_eq!(views.fetch(&inv, "ContainerView", &none, "view").unwrap(), "");
    }
}
