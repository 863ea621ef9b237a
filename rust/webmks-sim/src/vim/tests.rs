//! SOAP requests in, answers out: sessions, tickets by version, and a VM's life as libvirt's esx driver drives
//! it (register from a .vmx, wait for tasks with a property filter, power operations, unregister).

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::datastore::{parse_datastore_spec, Datastores};
use crate::soap::parse_tree;
use crate::version::Release;

async fn call_xml(sim: &Arc<Sim>, body: &str, session: Option<&str>, version: Option<&str>) -> Reply {
    let xml = format!("<Envelope><Body>{body}</Body></Envelope>");
    let action = version.map(|v| format!("\"urn:vim25/{v}\""));
    call(sim, &Request::parse(xml.as_bytes()).unwrap(), session, action.as_deref()).await
}

async fn login(sim: &Arc<Sim>, password: &str) -> Reply {
    let body = format!(
        "<Login><_this type=\"SessionManager\">ha-sessionmgr</_this><userName>root</userName>\
         <password>{password}</password></Login>"
    );
    call_xml(sim, &body, None, Some("8.0.2.0")).await
}

async fn ticket(sim: &Arc<Sim>, moid: &str, session: Option<&str>, version: Option<&str>) -> Reply {
    let body = format!(
        "<AcquireTicket><_this type=\"VirtualMachine\">{moid}</_this>\
         <ticketType xsi:type=\"xsd:string\">webmks</ticketType></AcquireTicket>"
    );
    call_xml(sim, &body, session, version).await
}

fn session_of(reply: &Reply) -> String {
    let cookie = reply.set_cookie.as_deref().unwrap();
    crate::sessions::session_from_cookie(cookie).unwrap().to_string()
}

/// The text of the first element called `name` in a response.
fn text_of(body: &str, name: &str) -> Option<String> {
    fn find(e: &Element, name: &str) -> Option<String> {
        if e.name == name {
            return Some(e.text.clone());
        }
        e.children.iter().find_map(|c| find(c, name))
    }
    find(&parse_tree(body.as_bytes()).unwrap(), name)
}

/// A `…_Task` call on `this`; returns the task's id.
async fn start_task(sim: &Arc<Sim>, sid: &str, method: &str, this: &str, params: &str) -> String {
    let r = call_xml(sim, &format!("<{method}>{this}{params}</{method}>"), Some(sid), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    text_of(&r.body, "returnval").unwrap()
}

/// What libvirt's esxVI_WaitForTaskCompletion does: a filter on info.state, WaitForUpdates until it ends,
/// then the whole TaskInfo. Returns the final info.
async fn wait_task(sim: &Arc<Sim>, sid: &str, task: &str) -> String {
    let filter = call_xml(
        sim,
        &format!(
            "<CreateFilter><_this type=\"PropertyCollector\">ha-property-collector</_this><spec><propSet>\
             <type>Task</type><pathSet>info.state</pathSet></propSet><objectSet><obj type=\"Task\">{task}</obj>\
             <skip>false</skip></objectSet></spec><partialUpdates>true</partialUpdates></CreateFilter>"
        ),
        Some(sid),
        None,
    )
    .await;
    let filter = text_of(&filter.body, "returnval").unwrap();
    let mut version = String::new();
    for _ in 0..20 {
        let body = format!(
            "<WaitForUpdates><_this type=\"PropertyCollector\">ha-property-collector</_this><version>{version}\
             </version></WaitForUpdates>"
        );
        let r = call_xml(sim, &body, Some(sid), None).await;
        version = text_of(&r.body, "version").unwrap();
        if matches!(text_of(&r.body, "val").as_deref(), Some("success" | "error")) {
            break;
        }
    }
    let destroy =
        format!("<DestroyPropertyFilter><_this type=\"PropertyFilter\">{filter}</_this></DestroyPropertyFilter>");
    assert_eq!(call_xml(sim, &destroy, Some(sid), None).await.status, 200);
    let info = format!(
        "<RetrieveProperties><_this type=\"PropertyCollector\">ha-property-collector</_this><specSet><propSet>\
         <type>Task</type><pathSet>info</pathSet></propSet><objectSet><obj type=\"Task\">{task}</obj></objectSet>\
         </specSet></RetrieveProperties>"
    );
    call_xml(sim, &info, Some(sid), None).await.body
}

fn vm_this(moid: &str) -> String {
    format!("<_this type=\"VirtualMachine\">{moid}</_this>")
}

#[tokio::test]
async fn login_faults_and_session_checks() {
    let sim = Arc::new(Sim::for_tests(0));
    let bad = login(&sim, "nope").await;
    assert_eq!((bad.status, bad.set_cookie.is_none()), (500, true));
    assert!(bad.body.contains("<InvalidLoginFault xmlns=\"urn:vim25\" xsi:type=\"InvalidLogin\">"));
    let anonymous = ticket(&sim, "1", None, Some("8.0.2.0")).await;
    assert!(anonymous.body.contains("xsi:type=\"NotAuthenticated\""), "{}", anonymous.body);
    let ok = login(&sim, "pw").await;
    assert_eq!(ok.status, 200);
    assert!(ok.set_cookie.as_deref().unwrap().ends_with("\"; Path=/; HttpOnly; Secure"));
    assert!(ok.body.contains("<LoginResponse xmlns=\"urn:vim25\"><returnval><key>52"));
    let sid = session_of(&ok);
    let off = ticket(&sim, "2", Some(&sid), Some("8.0.2.0")).await;
    assert!(off.body.contains("xsi:type=\"InvalidState\""), "{}", off.body);
    let gone = ticket(&sim, "9", Some(&sid), Some("8.0.2.0")).await;
    assert!(gone.body.contains(
        "<faultstring>The object 'vim.VirtualMachine:9' has already been deleted or has not been \
         completely created</faultstring>"
    ));
    let unknown =
        call_xml(&sim, &format!("<ReconfigVM_Task>{}</ReconfigVM_Task>", vm_this("1")), Some(&sid), None).await;
    assert!(unknown.body.contains("xsi:type=\"MethodNotFound\""));
    let current = call_xml(
        &sim,
        "<RetrieveProperties><_this type=\"PropertyCollector\">ha-property-collector</_this><specSet><propSet>\
         <type>SessionManager</type><pathSet>currentSession</pathSet></propSet><objectSet><obj \
         type=\"SessionManager\">ha-sessionmgr</obj></objectSet></specSet></RetrieveProperties>",
        Some(&sid),
        None,
    )
    .await;
    assert_eq!(text_of(&current.body, "key"), text_of(&ok.body, "key"), "currentSession is the caller's");
    assert!(current.body.contains("<val xsi:type=\"UserSession\"><key>52"));
    let stats = sim.stats.to_json();
    assert!(stats.contains("\"logins\":1,\"failed_logins\":1,"), "{stats}");
}

#[tokio::test]
async fn ticket_fields_follow_the_lower_of_requested_and_host_version() {
    let sim = Arc::new(Sim::for_tests(1));
    let sid = session_of(&login(&sim, "pw").await);
    let refused = ticket(&sim, "1", Some(&sid), Some("8.0.2.0")).await;
    assert!(refused.body.contains("xsi:type=\"ManagedObjectNotFound\""), "--refuse-tickets 1");
    let new = ticket(&sim, "1", Some(&sid), Some("8.0.2.0")).await.body;
    assert!(new.contains("<cfgFile>[datastore1] on/on.vmx</cfgFile><host>127.0.0.1</host><port>8443</port>"));
    assert!(new.contains("<sslThumbprint>AA:BB</sslThumbprint><certThumbprintList><thumbprint>CC:DD</thumbprint>"));
    assert!(new.contains("<url>wss://127.0.0.1:8443/ticket/"));
    let v7 = ticket(&sim, "1", Some(&sid), Some("7.0.3.0")).await.body;
    assert!(v7.contains("<url>") && !v7.contains("certThumbprintList"));
    let v67 = ticket(&sim, "1", Some(&sid), Some("6.7.3")).await.body;
    assert!(!v67.contains("<url>") && v67.contains("<sslThumbprint>"));
    let none = ticket(&sim, "1", Some(&sid), None).await.body;
    assert!(!none.contains("<url>"), "no SOAPAction: the oldest dialect");

    let old = Arc::new(Sim::for_tests_with(0, Release::V6_5, Datastores::default()));
    let sid = session_of(&login(&old, "pw").await);
    let clamped = ticket(&old, "1", Some(&sid), Some("8.0.2.0")).await.body;
    assert!(clamped.contains("<ticket>") && !clamped.contains("<url>"), "a 6.5 host writes 6.5 tickets: {clamped}");
    let content = call_xml(
        &old,
        "<RetrieveServiceContent><_this type=\"ServiceInstance\">ServiceInstance</_this></RetrieveServiceContent>",
        None,
        None,
    )
    .await;
    assert_eq!(text_of(&content.body, "apiVersion").as_deref(), Some("6.5"));
}

#[tokio::test]
async fn power_operations_and_the_mks_delay() {
    let mut sim = Sim::for_tests(0);
    sim.settings.mks_delay = Duration::from_secs(60);
    let sim = Arc::new(sim);
    let sid = session_of(&login(&sim, "pw").await);
    let on = start_task(&sim, &sid, "PowerOnVM_Task", &vm_this("1"), "").await;
    let info = wait_task(&sim, &sid, &on).await;
    assert!(info.contains("<state>error</state>") && info.contains("<fault xsi:type=\"InvalidPowerState\">"), "{info}");
    assert!(info.contains("<localizedMessage>The attempted operation cannot be performed in the current state (Powered on).</localizedMessage>"));
    let off = start_task(&sim, &sid, "PowerOffVM_Task", &vm_this("1"), "").await;
    assert!(wait_task(&sim, &sid, &off).await.contains("<state>success</state>"));
    assert!(ticket(&sim, "1", Some(&sid), Some("8.0.2.0")).await.body.contains("xsi:type=\"InvalidState\""));
    let on = start_task(&sim, &sid, "PowerOnVM_Task", &vm_this("1"), "").await;
    assert!(on.starts_with("haTask-1-vim.VirtualMachine.powerOn-"), "{on}");
    assert!(wait_task(&sim, &sid, &on).await.contains("<state>success</state>"));
    let starting = ticket(&sim, "1", Some(&sid), Some("8.0.2.0")).await.body;
    assert!(
        starting.contains("<faultstring>A general system error occurred: 'mks' is not available</faultstring>"),
        "{starting}"
    );
    assert!(starting.contains(
        "<SystemErrorFault xmlns=\"urn:vim25\" xsi:type=\"SystemError\"><reason>'mks' is not available</reason>"
    ));
    let busy = call_xml(&sim, &format!("<UnregisterVM>{}</UnregisterVM>", vm_this("1")), Some(&sid), None).await;
    assert!(busy.body.contains("xsi:type=\"InvalidPowerState\""), "a powered-on VM is not unregistered: {}", busy.body);
}

#[tokio::test]
async fn a_vm_registered_from_a_vmx() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("openQA")).unwrap();
    let ds = parse_datastore_spec(&format!("datastore1={}", dir.path().display())).unwrap();
    let uuid = ds.uuid.clone();
    let sim = Arc::new(Sim::for_tests_with(0, Release::V6_5, Datastores::new(vec![ds]).unwrap()));
    let vmx = format!(
        ".encoding = \"UTF-8\"\nconfig.version = \"8\"\nvirtualHW.version = \"10\"\ndisplayName = \"openQA-SUT-1\"\n\
         uuid.bios = \"56 4d 9b ef ac d9 b4 e0-c8 f0 ae a8 b9 10 35 15\"\nmemsize = \"256\"\nnumvcpus = \"1\"\n\
         ide0:0.present = \"true\"\nide0:0.deviceType = \"ata-hardDisk\"\n\
         ide0:0.fileName = \"/vmfs/volumes/{uuid}/openQA/openQA-SUT-1a.vmdk\"\n\
         RemoteDisplay.vnc.enabled = \"true\"\nRemoteDisplay.vnc.port = \"5901\"\nRemoteDisplay.vnc.password = \"pw\"\n\
         serial0.present = \"true\"\nserial0.fileType = \"network\"\nserial0.fileName = \"telnet://0.0.0.0:4567\"\n\
         guestinfo.x = \"y\"\n"
    );
    std::fs::write(dir.path().join("openQA/openQA-SUT-1.vmx"), vmx).unwrap();
    let sid = session_of(&login(&sim, "pw").await);
    let folder = "<_this type=\"Folder\">ha-folder-vm</_this>";
    let path = "<path>[datastore1] openQA/openQA-SUT-1.vmx</path><asTemplate>false</asTemplate>\
                <pool type=\"ResourcePool\">ha-root-pool</pool><host type=\"HostSystem\">ha-host</host>";
    let reg = start_task(&sim, &sid, "RegisterVM_Task", folder, path).await;
    let info = wait_task(&sim, &sid, &reg).await;
    assert!(info.contains("<state>success</state>"), "{info}");
    assert!(info.contains("<result xsi:type=\"ManagedObjectReference\" type=\"VirtualMachine\">3</result>"), "{info}");
    let again = wait_task(&sim, &sid, &start_task(&sim, &sid, "RegisterVM_Task", folder, path).await).await;
    assert!(again.contains("<fault xsi:type=\"AlreadyExists\">"), "{again}");
    let missing = "<path>[datastore1] openQA/nope.vmx</path><asTemplate>false</asTemplate>";
    let missing = wait_task(&sim, &sid, &start_task(&sim, &sid, "RegisterVM_Task", folder, missing).await).await;
    assert!(missing.contains("<localizedMessage>File [datastore1] openQA/nope.vmx was not found</localizedMessage>"));

    let found = call_xml(
        &sim,
        "<FindByUuid><_this type=\"SearchIndex\">ha-searchindex</_this><datacenter type=\"Datacenter\">ha-datacenter\
         </datacenter><uuid>564d9bef-acd9-b4e0-c8f0-aea8b9103515</uuid><vmSearch>true</vmSearch></FindByUuid>",
        Some(&sid),
        None,
    )
    .await;
    assert_eq!(text_of(&found.body, "returnval").as_deref(), Some("3"));
    let props = call_xml(
        &sim,
        "<RetrieveProperties><_this type=\"PropertyCollector\">ha-property-collector</_this><specSet><propSet>\
         <type>VirtualMachine</type><pathSet>config.files.vmPathName</pathSet><pathSet>runtime.powerState</pathSet>\
         <pathSet>config.extraConfig</pathSet><pathSet>recentTask</pathSet></propSet><objectSet><obj type=\"VirtualMachine\">3</obj>\
         </objectSet></specSet></RetrieveProperties>",
        Some(&sid),
        None,
    )
    .await
    .body;
    assert!(props.contains("<val xsi:type=\"xsd:string\">[datastore1] openQA/openQA-SUT-1.vmx</val>"), "{props}");
    assert!(props.contains(
        "<OptionValue xsi:type=\"OptionValue\"><key>guestinfo.x</key><value xsi:type=\"xsd:string\">y</value>"
    ));
    assert!(props.contains("<val xsi:type=\"ArrayOfManagedObjectReference\"></val>"), "no task on the VM yet");

    let on = start_task(&sim, &sid, "PowerOnVM_Task", &vm_this("3"), "").await;
    let info = wait_task(&sim, &sid, &on).await;
    assert!(info.contains("<fault xsi:type=\"FileNotFound\"><file>[datastore1] openQA/openQA-SUT-1a.vmdk</file></fault>\
                           <localizedMessage>File [datastore1] openQA/openQA-SUT-1a.vmdk was not found</localizedMessage>"), "{info}");
    std::fs::write(dir.path().join("openQA/openQA-SUT-1a.vmdk"), "# Disk DescriptorFile\n").unwrap();
    let on = start_task(&sim, &sid, "PowerOnVM_Task", &vm_this("3"), "").await;
    let info = wait_task(&sim, &sid, &on).await;
    assert!(info.contains("<fault xsi:type=\"SystemError\"><reason>no guest to run"), "{info}");

    let unregister = call_xml(&sim, &format!("<UnregisterVM>{}</UnregisterVM>", vm_this("3")), Some(&sid), None).await;
    assert_eq!(unregister.status, 200, "{}", unregister.body);
    let gone = call_xml(&sim, &format!("<UnregisterVM>{}</UnregisterVM>", vm_this("3")), Some(&sid), None).await;
    assert!(gone.body.contains("xsi:type=\"ManagedObjectNotFound\""));
    assert!(dir.path().join("openQA/openQA-SUT-1.vmx").exists(), "unregistering keeps the files");

    let reg = start_task(&sim, &sid, "RegisterVM_Task", folder, path).await;
    assert!(wait_task(&sim, &sid, &reg).await.contains(">4</result>"), "moids are not reused");
    let destroy = start_task(&sim, &sid, "Destroy_Task", &vm_this("4"), "").await;
    assert!(wait_task(&sim, &sid, &destroy).await.contains("<state>success</state>"));
    assert!(!dir.path().join("openQA/openQA-SUT-1.vmx").exists(), "Destroy_Task deletes the .vmx");
    assert!(!dir.path().join("openQA/openQA-SUT-1a.vmdk").exists(), "and the disk next to it");
}

#[tokio::test]
async fn wait_for_updates_ex_times_out_empty() {
    let sim = Arc::new(Sim::for_tests(0));
    let sid = session_of(&login(&sim, "pw").await);
    let body = "<WaitForUpdatesEx><_this type=\"PropertyCollector\">ha-property-collector</_this><version>1</version>\
                <options><maxWaitSeconds>0</maxWaitSeconds></options></WaitForUpdatesEx>";
    let first = call_xml(&sim, body, Some(&sid), None).await;
    assert_eq!(text_of(&first.body, "version").as_deref(), Some("1"), "an unknown version starts over");
    let second = call_xml(&sim, body, Some(&sid), None).await;
    assert!(
        second.body.contains("<WaitForUpdatesExResponse xmlns=\"urn:vim25\"></WaitForUpdatesExResponse>"),
        "{}",
        second.body
    );
}
