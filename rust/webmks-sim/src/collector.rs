//! The PropertyCollector's retrieval: a `PropertyFilterSpec` (objects, traversal specs, property specs) applied
//! to the [`World`], as `RetrieveProperties`, `RetrievePropertiesEx` (paged with `ContinueRetrievePropertiesEx`)
//! and the `Fetch` accessor. Traversal specs follow reference properties from object to object: how libvirt
//! walks from the root folder to the datacenter, host, VMs and datastores, and pyVmomi through container views.

use std::collections::HashMap;

use crate::objects::{all_properties, is_a, Mo, Prop, Ref, World};
use crate::sessions::random_hex;
use crate::soap::{escape, moref, Element, Fault};
use crate::values::Value;

/// How deep traversal specs may nest (they can name each other in cycles).
const MAX_DEPTH: usize = 16;

/// One selected object with the requested properties that are set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub obj: Ref,
    pub props: Vec<(String, Value)>,
}

impl Content {
    /// `<objects>` (an `ObjectContent`).
    pub fn to_xml(&self) -> String {
        let props: String = self
            .props
            .iter()
            .map(|(name, v)| format!("<propSet><name>{}</name>{}</propSet>", escape(name), v.element("val")))
            .collect();
        format!("<objects>{}{props}</objects>", moref("obj", &self.obj.0, &self.obj.1))
    }
}

/// Whether a spec element's `skip` is true.
fn skips(e: &Element) -> bool {
    e.text_of("skip") == Some("true")
}

/// The named traversal specs of an object spec's selection tree, by name.
fn named_specs<'e>(select: &'e [Element], into: &mut HashMap<&'e str, &'e Element>) {
    for s in select {
        if s.child("path").is_some() {
            if let Some(name) = s.text_of("name").filter(|n| !n.is_empty()) {
                into.entry(name).or_insert(s);
            }
            named_specs(&s.children, into);
        }
    }
}

struct Walk<'w, 'a, 'e> {
    world: &'w World<'a>,
    named: HashMap<&'e str, &'e Element>,
    selected: Vec<Ref>,
}

impl<'a, 'e> Walk<'_, 'a, 'e> {
    fn follow(&mut self, mo: &Mo<'a>, select: impl Iterator<Item = &'e Element>, depth: usize) -> Result<(), Fault> {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        for s in select {
            let spec = if s.child("path").is_some() {
                s
            } else {
                let name = s.text_of("name").unwrap_or_default();
                *self.named.get(name).ok_or_else(|| Fault::invalid_argument("selectSet"))?
            };
            let (ty, path) = (spec.text_of("type").unwrap_or_default(), spec.text_of("path").unwrap_or_default());
            if !is_a(mo.ty(), ty) {
                continue;
            }
            let refs = self.world.references(mo, path).ok_or_else(|| Fault::invalid_property(path))?;
            for child in refs {
                if !skips(spec) && !self.selected.contains(&child) {
                    self.selected.push(child.clone());
                }
                if let Some(next) = self.world.resolve(&child.0, &child.1) {
                    self.follow(&next, spec.children("selectSet"), depth + 1)?;
                }
            }
        }
        Ok(())
    }
}

/// The objects a `PropertyFilterSpec` selects, with their properties. With `lenient`, objects that no longer
/// exist are left out (property filters); otherwise they are a ManagedObjectNotFound fault.
pub fn collect(world: &World, spec: &Element, lenient: bool) -> Result<Vec<Content>, Fault> {
    let prop_specs: Vec<&Element> = spec.children("propSet").collect();
    let mut selected: Vec<Ref> = Vec::new();
    for set in spec.children("objectSet") {
        let obj = set.child("obj").ok_or_else(|| Fault::invalid_argument("specSet.objectSet.obj"))?;
        let (ty, id) = obj.moref();
        let Some(root) = world.resolve(ty, id) else {
            if lenient {
                continue;
            }
            return Err(Fault::object_not_found(ty, id));
        };
        let select: Vec<Element> = set.children("selectSet").cloned().collect();
        let mut walk = Walk { world, named: HashMap::new(), selected: std::mem::take(&mut selected) };
        named_specs(&select, &mut walk.named);
        let root_ref = (root.ty().to_string(), id.to_string());
        if !skips(set) && !walk.selected.contains(&root_ref) {
            walk.selected.push(root_ref);
        }
        walk.follow(&root, select.iter(), 0)?;
        selected = walk.selected;
    }
    let mut contents = Vec::new();
    for (ty, id) in selected {
        let Some(mo) = world.resolve(&ty, &id) else { continue };
        let Some(ps) = prop_specs.iter().find(|p| is_a(&ty, p.text_of("type").unwrap_or_default())) else {
            continue;
        };
        let paths: Vec<&str> = if ps.text_of("all") == Some("true") {
            all_properties(&ty).to_vec()
        } else {
            ps.children("pathSet").map(|p| p.text.trim()).collect()
        };
        let mut props = Vec::new();
        for path in paths {
            match world.property(&mo, path) {
                Prop::Set(v) => props.push((path.to_string(), v)),
                Prop::Unset => {}
                Prop::Invalid => return Err(Fault::invalid_property(path)),
            }
        }
        contents.push(Content { obj: (ty, id), props });
    }
    Ok(contents)
}

/// A one-line summary of a retrieval for the log: `HostSystem{name,vm} from Folder:ha-folder-root`.
pub fn describe(spec: &Element) -> String {
    let props: Vec<String> = spec
        .children("propSet")
        .map(|p| {
            let paths: Vec<&str> = p.children("pathSet").map(|x| x.text.trim()).collect();
            let paths = if p.text_of("all") == Some("true") { "all".to_string() } else { paths.join(",") };
            format!("{}{{{paths}}}", p.text_of("type").unwrap_or_default())
        })
        .collect();
    let objs: Vec<String> = spec
        .children("objectSet")
        .filter_map(|o| o.child("obj"))
        .map(|o| format!("{}:{}", o.moref().0, o.moref().1))
        .collect();
    format!("{} from {}", props.join(" "), objs.join(" "))
}

/// Unfinished `RetrievePropertiesEx` results, by token.
#[derive(Debug, Default)]
pub struct Pages {
    by_token: HashMap<String, Vec<String>>,
}

impl Pages {
    /// Splits `objects` after `max` (when given and exceeded): returns the first page and the token for the rest.
    pub fn page(&mut self, mut objects: Vec<String>, max: Option<usize>) -> (Vec<String>, Option<String>) {
        let rest = match max {
            Some(n) if n > 0 && objects.len() > n => objects.split_off(n),
            _ => return (objects, None),
        };
        let token = random_hex(8);
        self.by_token.insert(token.clone(), rest);
        (objects, Some(token))
    }

    /// `ContinueRetrievePropertiesEx(token)`: everything left.
    pub fn next(&mut self, token: &str) -> Result<Vec<String>, Fault> {
        self.by_token.remove(token).ok_or_else(|| Fault::invalid_argument("token"))
    }

    pub fn cancel(&mut self, token: &str) {
        self.by_token.remove(token);
    }
}

/// `Fetch(prop)` on an object: its `returnval` (lists of references as one `returnval` per reference).
pub fn fetch(world: &World, ty: &str, id: &str, prop: &str) -> Result<String, Fault> {
    let mo = world.resolve(ty, id).ok_or_else(|| Fault::object_not_found(ty, id))?;
    match world.property(&mo, prop) {
        Prop::Set(v) if v.xsi == "ArrayOfManagedObjectReference" => {
            Ok(world.references(&mo, prop).unwrap_or_default().iter().map(|(t, i)| moref("returnval", t, i)).collect())
        }
        Prop::Set(v) => Ok(v.element("returnval")),
        Prop::Unset => Ok(String::new()),
        Prop::Invalid => Err(Fault::invalid_property(prop)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datastore::{parse_datastore_spec, Datastores};
    use crate::inventory::{parse_vm_spec, Flavour, Inventory};
    use crate::soap::Request;
    use crate::tasks::Tasks;
    use crate::version::Release;
    use crate::views::{View, Views};
    use crate::vms::Registry;

    struct Fixture {
        inv: Inventory,
        vms: Registry,
        tasks: Tasks,
        views: Views,
    }

    fn fixture() -> Fixture {
        let specs = ["a", "b,power=off", "c"].map(|s| parse_vm_spec(s).unwrap());
        let ds = Datastores::new(vec![parse_datastore_spec("datastore1=/tmp").unwrap()]).unwrap();
        Fixture {
            inv: Inventory::new(Flavour::Esxi, Release::V8_0, "esx.test", ds),
            vms: Registry::new(Flavour::Esxi, &specs).unwrap(),
            tasks: Tasks::new(Flavour::Esxi),
            views: Views::default(),
        }
    }

    impl Fixture {
        fn world(&self) -> World<'_> {
            World { inv: &self.inv, vms: &self.vms, tasks: &self.tasks, views: &self.views, session: None }
        }
    }

    fn spec(body: &str) -> Element {
        let xml = format!(
            "<Envelope><Body><RetrievePropertiesEx><specSet>{body}</specSet></RetrievePropertiesEx></Body></Envelope>"
        );
        Request::parse(xml.as_bytes()).unwrap().call.child("specSet").unwrap().clone()
    }

    /// What libvirt sends to find the datacenter: root folder, folderToChildEntity.
    #[test]
    fn libvirt_datacenter_lookup() {
        let f = fixture();
        let s = spec(
            r#"<propSet><type>Datacenter</type><pathSet>name</pathSet><pathSet>vmFolder</pathSet><pathSet>hostFolder</pathSet></propSet>
            <objectSet><obj type="Folder">ha-folder-root</obj><skip>false</skip>
            <selectSet xsi:type="TraversalSpec"><name>folderToChildEntity</name><type>Folder</type><path>childEntity</path><skip>false</skip></selectSet></objectSet>"#,
        );
        let c = collect(&f.world(), &s, false).unwrap();
        assert_eq!(c.len(), 1, "the root folder itself has no Datacenter properties");
        assert_eq!(
            c[0].to_xml(),
            "<objects><obj type=\"Datacenter\">ha-datacenter</obj><propSet><name>name</name><val xsi:type=\"xsd:string\">\
             ha-datacenter</val></propSet><propSet><name>vmFolder</name><val xsi:type=\"ManagedObjectReference\" \
             type=\"Folder\">ha-folder-vm</val></propSet><propSet><name>hostFolder</name><val \
             xsi:type=\"ManagedObjectReference\" type=\"Folder\">ha-folder-host</val></propSet></objects>"
        );
        assert_eq!(describe(&s), "Datacenter{name,vmFolder,hostFolder} from Folder:ha-folder-root");
    }

    #[test]
    fn host_to_vms_and_datastores_and_named_specs() {
        let f = fixture();
        let vms = spec(
            r#"<propSet><type>VirtualMachine</type><pathSet>name</pathSet><pathSet>runtime.powerState</pathSet><pathSet>runtime.question</pathSet></propSet>
            <objectSet><obj type="HostSystem">ha-host</obj><skip>false</skip>
            <selectSet xsi:type="TraversalSpec"><name>hostSystemToVm</name><type>HostSystem</type><path>vm</path><skip>false</skip></selectSet></objectSet>"#,
        );
        let c = collect(&f.world(), &vms, false).unwrap();
        assert_eq!(c.iter().map(|c| c.obj.1.as_str()).collect::<Vec<_>>(), ["1", "2", "3"]);
        assert_eq!(c[1].props.len(), 2, "runtime.question is unset, so left out");
        assert_eq!(c[1].props[1].1.element("val"), "<val xsi:type=\"VirtualMachinePowerState\">poweredOff</val>");
        let ds = spec(
            r#"<propSet><type>Datastore</type><pathSet>summary.name</pathSet><pathSet>host</pathSet></propSet>
            <objectSet><obj type="HostSystem">ha-host</obj><skip>false</skip>
            <selectSet xsi:type="TraversalSpec"><name>hostSystemToDatastore</name><type>HostSystem</type><path>datastore</path><skip>false</skip></selectSet></objectSet>"#,
        );
        let c = collect(&f.world(), &ds, false).unwrap();
        let xml = c[0].to_xml();
        assert!(xml.contains("<val xsi:type=\"xsd:string\">datastore1</val>"), "{xml}");
        assert!(xml.contains("<val xsi:type=\"ArrayOfDatastoreHostMount\"><DatastoreHostMount xsi:type=\"DatastoreHostMount\"><key type=\"HostSystem\">ha-host</key><mountInfo><path>/vmfs/volumes/"), "{xml}");
        // computeResourceToParent names managedEntityToParent, defined inline: ComputeResource -> Folder -> Datacenter.
        let up = spec(
            r#"<propSet><type>Datacenter</type><pathSet>name</pathSet></propSet>
            <objectSet><obj type="ComputeResource">ha-compute-res</obj><skip>false</skip>
            <selectSet xsi:type="TraversalSpec"><name>computeResourceToParent</name><type>ComputeResource</type><path>parent</path><skip>false</skip>
            <selectSet><name>managedEntityToParent</name></selectSet></selectSet>
            <selectSet xsi:type="TraversalSpec"><name>managedEntityToParent</name><type>ManagedEntity</type><path>parent</path><skip>false</skip></selectSet>
            </objectSet>"#,
        );
        let c = collect(&f.world(), &up, false).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].obj, ("Datacenter".to_string(), "ha-datacenter".to_string()));
    }

    #[test]
    fn faults_and_views() {
        let mut f = fixture();
        let bad = spec(
            r#"<propSet><type>VirtualMachine</type><pathSet>colour</pathSet></propSet><objectSet><obj type="VirtualMachine">1</obj></objectSet>"#,
        );
        assert_eq!(collect(&f.world(), &bad, false).unwrap_err().kind, "InvalidProperty");
        let gone = spec(
            r#"<propSet><type>VirtualMachine</type><pathSet>name</pathSet></propSet><objectSet><obj type="VirtualMachine">9</obj></objectSet>"#,
        );
        assert_eq!(collect(&f.world(), &gone, false).unwrap_err().kind, "ManagedObjectNotFound");
        assert_eq!(collect(&f.world(), &gone, true).unwrap(), []);
        let root = ("Folder".to_string(), "ha-folder-root".to_string());
        let id =
            f.views.create("52ab", View { container: root, types: vec!["VirtualMachine".into()], recursive: true });
        let view = spec(&format!(
            r#"<propSet><type>VirtualMachine</type><pathSet>name</pathSet></propSet>
            <objectSet><obj type="ContainerView">{id}</obj><skip>true</skip>
            <selectSet xsi:type="TraversalSpec"><type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet>"#
        ));
        let c = collect(&f.world(), &view, false).unwrap();
        assert_eq!(c.iter().map(|c| c.obj.1.as_str()).collect::<Vec<_>>(), ["1", "2", "3"]);
        assert_eq!(
            fetch(&f.world(), "ContainerView", &id, "view").unwrap(),
            "<returnval type=\"VirtualMachine\">1</returnval><returnval type=\"VirtualMachine\">2</returnval>\
             <returnval type=\"VirtualMachine\">3</returnval>"
        );
        assert_eq!(
            fetch(&f.world(), "VirtualMachine", "2", "name").unwrap(),
            "<returnval xsi:type=\"xsd:string\">b</returnval>"
        );
        assert_eq!(fetch(&f.world(), "VirtualMachine", "9", "name").unwrap_err().kind, "ManagedObjectNotFound");
        let hosts = f.views.create(
            "k",
            View {
                container: ("Folder".into(), "ha-folder-root".into()),
                types: vec!["HostSystem".into()],
                recursive: true,
            },
        );
        assert_eq!(
            fetch(&f.world(), "ContainerView", &hosts, "view").unwrap(),
            "<returnval type=\"HostSystem\">ha-host</returnval>"
        );
        assert!(f.views.destroy(&id));
        assert_eq!(collect(&f.world(), &view, false).unwrap_err().kind, "ManagedObjectNotFound");
    }

    #[test]
    fn paging() {
        let mut pages = Pages::default();
        let objs: Vec<String> = (0..3).map(|i| i.to_string()).collect();
        let (first, token) = pages.page(objs.clone(), Some(2));
        assert_eq!(first, ["0", "1"]);
        assert_eq!(pages.next(&token.unwrap()).unwrap(), ["2"]);
        assert_eq!(pages.page(objs, None).1, None);
        assert_eq!(pages.next("nope").unwrap_err().kind, "InvalidArgument");
    }
}
