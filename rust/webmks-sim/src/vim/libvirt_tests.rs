//! What Debian 12's libvirt 9.0 esx driver sends (its serialization, captured from `virsh -c esx://…`: every
//! element with `xmlns` and `xsi:type`, references with both `xsi:type` and `type`) and what it needs back:
//! typed values, no whitespace inside answers, the inventory of a standalone host.

use std::sync::Arc;

use super::*;
use crate::datastore::{parse_datastore_spec, Datastores};
use crate::version::Release;

/// A request as libvirt writes it.
fn envelope(call: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope\n \
         xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"\n \
         xmlns:soapenc=\"http://schemas.xmlsoap.org/soap/encoding/\"\n \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\n xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">\n\
         <soapenv:Body>\n{call}</soapenv:Body>\n</soapenv:Envelope>"
    )
}

/// libvirt's `_this`-style reference element.
fn mor(tag: &str, ty: &str, id: &str) -> String {
    format!("<{tag} xmlns=\"urn:vim25\" xsi:type=\"ManagedObjectReference\" type=\"{ty}\">{id}</{tag}>")
}

fn string(tag: &str, s: &str) -> String {
    format!("<{tag} xmlns=\"urn:vim25\" xsi:type=\"xsd:string\">{s}</{tag}>")
}

/// esxVI_LookupObjectContentByType's RetrieveProperties: one property spec, one object, at most one traversal.
fn retrieve(ty: &str, paths: &[&str], obj: (&str, &str), traversal: Option<(&str, &str, &str)>) -> String {
    let paths: String = paths.iter().map(|p| string("pathSet", p)).collect();
    let select = traversal
        .map(|(name, ty, path)| {
            format!(
                "<selectSet xmlns=\"urn:vim25\" xsi:type=\"TraversalSpec\">{}{}{}<skip xmlns=\"urn:vim25\" \
                 xsi:type=\"xsd:boolean\">false</skip></selectSet>",
                string("name", name),
                string("type", ty),
                string("path", path)
            )
        })
        .unwrap_or_default();
    envelope(&format!(
        "<RetrieveProperties xmlns=\"urn:vim25\">{}<specSet xmlns=\"urn:vim25\" xsi:type=\"PropertyFilterSpec\">\
         <propSet xmlns=\"urn:vim25\" xsi:type=\"PropertySpec\">{}{paths}</propSet><objectSet xmlns=\"urn:vim25\" \
         xsi:type=\"ObjectSpec\">{}<skip xmlns=\"urn:vim25\" xsi:type=\"xsd:boolean\">false</skip>{select}</objectSet>\
         </specSet></RetrieveProperties>",
        mor("_this", "PropertyCollector", "ha-property-collector"),
        string("type", ty),
        mor("obj", obj.0, obj.1),
    ))
}

async fn send(sim: &Arc<Sim>, xml: &str, session: Option<&str>) -> Reply {
    let req = Request::parse(xml.as_bytes()).unwrap();
    call(sim, &req, session, None).await
}

/// The `returnval`s of an answer, which libvirt walks child by child: no text between elements.
fn returnvals(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.body);
    let start = reply.body.find("<returnval").expect("a returnval");
    let end = reply.body.rfind("</returnval>").expect("a returnval") + "</returnval>".len();
    let vals = &reply.body[start..end];
    assert!(!vals.contains(">\n") && !vals.contains("> <"), "whitespace between elements: {vals}");
    vals.to_string()
}

async fn connect(sim: &Arc<Sim>) -> String {
    let content = send(
        sim,
        &envelope(&format!(
            "<RetrieveServiceContent xmlns=\"urn:vim25\">{}</RetrieveServiceContent>",
            mor("_this", "ServiceInstance", "ServiceInstance")
        )),
        None,
    )
    .await;
    let about = returnvals(&content);
    assert!(
        about.contains("<about><name>VMware ESXi</name><fullName>VMware ESXi 7.0.3 build-18644231</fullName>"),
        "{about}"
    );
    assert!(about.contains(
        "<productLineId>embeddedEsx</productLineId><apiType>HostAgent</apiType><apiVersion>7.0.3.0</apiVersion>"
    ));
    let login = envelope(&format!(
        "<Login xmlns=\"urn:vim25\">{}{}{}</Login>",
        mor("_this", "SessionManager", "ha-sessionmgr"),
        string("userName", "root"),
        string("password", "pw")
    ));
    let reply = send(sim, &login, None).await;
    returnvals(&reply);
    crate::sessions::session_from_cookie(reply.set_cookie.as_deref().unwrap()).unwrap().to_string()
}

#[tokio::test]
async fn connect_and_look_up_the_host() {
    let ds = Datastores::new(vec![parse_datastore_spec("datastore1=/tmp").unwrap()]).unwrap();
    let uuid = ds.list[0].uuid.clone();
    let sim = Arc::new(Sim::for_tests_with(0, Release::V7_0, ds));
    let sid = connect(&sim).await;
    let s = Some(sid.as_str());
    let traverse = |name, ty, path| Some((name, ty, path));

    let dc = retrieve(
        "Datacenter",
        &["name", "hostFolder", "vmFolder"],
        ("Folder", "ha-folder-root"),
        traverse("folderToChildEntity", "Folder", "childEntity"),
    );
    assert_eq!(
        returnvals(&send(&sim, &dc, s).await),
        "<returnval><obj type=\"Datacenter\">ha-datacenter</obj><propSet><name>name</name><val xsi:type=\"xsd:string\">\
         ha-datacenter</val></propSet><propSet><name>hostFolder</name><val xsi:type=\"ManagedObjectReference\" \
         type=\"Folder\">ha-folder-host</val></propSet><propSet><name>vmFolder</name><val \
         xsi:type=\"ManagedObjectReference\" type=\"Folder\">ha-folder-vm</val></propSet></returnval>"
    );
    let cr = retrieve(
        "ComputeResource",
        &["name", "host", "resourcePool"],
        ("Folder", "ha-folder-host"),
        traverse("folderToChildEntity", "Folder", "childEntity"),
    );
    assert_eq!(
        returnvals(&send(&sim, &cr, s).await),
        "<returnval><obj type=\"ComputeResource\">ha-compute-res</obj><propSet><name>name</name><val \
         xsi:type=\"xsd:string\">esx.test</val></propSet><propSet><name>host</name><val \
         xsi:type=\"ArrayOfManagedObjectReference\"><ManagedObjectReference xsi:type=\"ManagedObjectReference\" \
         type=\"HostSystem\">ha-host</ManagedObjectReference></val></propSet><propSet><name>resourcePool</name><val \
         xsi:type=\"ManagedObjectReference\" type=\"ResourcePool\">ha-root-pool</val></propSet></returnval>"
    );
    let host = retrieve(
        "HostSystem",
        &["name", "configManager"],
        ("ComputeResource", "ha-compute-res"),
        traverse("computeResourceToHost", "ComputeResource", "host"),
    );
    let host = returnvals(&send(&sim, &host, s).await);
    assert!(host.contains("<propSet><name>configManager</name><val xsi:type=\"HostConfigManager\"><cpuScheduler type=\"HostCpuSchedulerSystem\">"), "{host}");
    assert!(host.contains("<autoStartManager type=\"HostAutoStartManager\">ha-autostart-mgr</autoStartManager>"));
    let runtime = retrieve(
        "HostSystem",
        &["runtime.inMaintenanceMode", "summary.managementServerIp"],
        ("HostSystem", "ha-host"),
        None,
    );
    assert_eq!(
        returnvals(&send(&sim, &runtime, s).await),
        "<returnval><obj type=\"HostSystem\">ha-host</obj><propSet><name>runtime.inMaintenanceMode</name><val \
         xsi:type=\"xsd:boolean\">false</val></propSet></returnval>",
        "a standalone host has no management server: the property is left out"
    );
    let cpu = returnvals(
        &send(&sim, &retrieve("HostSystem", &["hardware.cpuFeature"], ("HostSystem", "ha-host"), None), s).await,
    );
    assert!(cpu.contains(
        "<HostCpuIdInfo xsi:type=\"HostCpuIdInfo\"><level>-2147483647</level><eax>0000:0000:0000:0000:0000:0000:0000:0000</eax>"
    ), "{cpu}");
    assert!(cpu.contains("<edx>0010:1000:0001:0000:0000:1000:0000:0000</edx>"), "long mode (edx bit 29)");
    let session = returnvals(
        &send(&sim, &retrieve("SessionManager", &["currentSession"], ("SessionManager", "ha-sessionmgr"), None), s)
            .await,
    );
    assert!(session.contains("<val xsi:type=\"UserSession\"><key>52"));
    let vms = retrieve(
        "VirtualMachine",
        &["configStatus", "runtime.powerState", "config.uuid", "name"],
        ("HostSystem", "ha-host"),
        traverse("hostSystemToVm", "HostSystem", "vm"),
    );
    let vms = returnvals(&send(&sim, &vms, s).await);
    assert!(
        vms.starts_with(
            "<returnval><obj type=\"VirtualMachine\">1</obj><propSet><name>configStatus</name><val \
         xsi:type=\"ManagedEntityStatus\">green</val></propSet><propSet><name>runtime.powerState</name><val \
         xsi:type=\"VirtualMachinePowerState\">poweredOn</val></propSet>"
        ),
        "{vms}"
    );
    let mounts = retrieve("Datastore", &["host"], ("Datastore", &uuid), None);
    assert!(returnvals(&send(&sim, &mounts, s).await).contains(&format!(
        "<DatastoreHostMount xsi:type=\"DatastoreHostMount\"><key type=\"HostSystem\">ha-host</key><mountInfo>\
         <path>/vmfs/volumes/{uuid}</path><accessMode>readWrite</accessMode><accessible>true</accessible></mountInfo>"
    )));
}

#[tokio::test]
async fn register_and_wait_for_the_task() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vm.vmx"), ".encoding = \"UTF-8\"\ndisplayName = \"vm\"\nmemsize = \"64\"\n")
        .unwrap();
    let ds =
        Datastores::new(vec![parse_datastore_spec(&format!("datastore1={}", dir.path().display())).unwrap()]).unwrap();
    let sim = Arc::new(Sim::for_tests_with(0, Release::V7_0, ds));
    let sid = connect(&sim).await;
    let s = Some(sid.as_str());
    let register = envelope(&format!(
        "<RegisterVM_Task xmlns=\"urn:vim25\">{}{}<asTemplate xmlns=\"urn:vim25\" xsi:type=\"xsd:boolean\">false\
         </asTemplate>{}{}</RegisterVM_Task>",
        mor("_this", "Folder", "ha-folder-vm"),
        string("path", "[datastore1] vm.vmx"),
        mor("pool", "ResourcePool", "ha-root-pool"),
        mor("host", "HostSystem", "ha-host"),
    ));
    let task = returnvals(&send(&sim, &register, s).await);
    assert_eq!(task, "<returnval type=\"Task\">haTask-ha-folder-vm-vim.Folder.registerVm-101</returnval>");
    let filter = envelope(&format!(
        "<CreateFilter xmlns=\"urn:vim25\">{}<spec xmlns=\"urn:vim25\" xsi:type=\"PropertyFilterSpec\"><propSet \
         xmlns=\"urn:vim25\" xsi:type=\"PropertySpec\">{}{}</propSet><objectSet xmlns=\"urn:vim25\" xsi:type=\"ObjectSpec\">\
         {}<skip xmlns=\"urn:vim25\" xsi:type=\"xsd:boolean\">false</skip></objectSet></spec><partialUpdates \
         xmlns=\"urn:vim25\" xsi:type=\"xsd:boolean\">true</partialUpdates></CreateFilter>",
        mor("_this", "PropertyCollector", "ha-property-collector"),
        string("type", "Task"),
        string("pathSet", "info.state"),
        mor("obj", "Task", "haTask-ha-folder-vm-vim.Folder.registerVm-101"),
    ));
    let filter = returnvals(&send(&sim, &filter, s).await);
    let filter_id = filter.trim_start_matches("<returnval type=\"PropertyFilter\">").trim_end_matches("</returnval>");
    let wait = envelope(&format!(
        "<WaitForUpdates xmlns=\"urn:vim25\">{}{}</WaitForUpdates>",
        mor("_this", "PropertyCollector", "ha-property-collector"),
        string("version", "")
    ));
    assert_eq!(
        returnvals(&send(&sim, &wait, s).await),
        format!(
            "<returnval><version>1</version><filterSet><filter type=\"PropertyFilter\">{filter_id}</filter><objectSet>\
             <kind>enter</kind><obj type=\"Task\">haTask-ha-folder-vm-vim.Folder.registerVm-101</obj><changeSet><name>\
             info.state</name><op>assign</op><val xsi:type=\"TaskInfoState\">success</val></changeSet></objectSet>\
             </filterSet></returnval>"
        )
    );
    let info = retrieve("Task", &["info"], ("Task", "haTask-ha-folder-vm-vim.Folder.registerVm-101"), None);
    let info = returnvals(&send(&sim, &info, s).await);
    assert!(
        info.contains("<val xsi:type=\"TaskInfo\"><key>haTask-ha-folder-vm-vim.Folder.registerVm-101</key>"),
        "{info}"
    );
    assert!(info.contains("<result xsi:type=\"ManagedObjectReference\" type=\"VirtualMachine\">3</result>"));
    let destroy = envelope(&format!(
        "<DestroyPropertyFilter xmlns=\"urn:vim25\">{}</DestroyPropertyFilter>",
        mor("_this", "PropertyFilter", filter_id)
    ));
    assert_eq!(send(&sim, &destroy, s).await.status, 200);
}
