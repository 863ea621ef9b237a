//! The `.vmx` file of a virtual machine: what libvirt's esx driver uploads on `virsh define`, and what
//! os-autoinst appends to afterwards (`echo 'bios.bootDelay = "10000"' >> NAME.vmx`).
//!
//! The format, as VMware and libvirt's vmx writer (`src/vmx/vmx.c`) produce it: one `key = "value"` per line,
//! `.encoding = "UTF-8"` first, `#` comments and blank lines. Keys are case-insensitive and a later line overrides
//! an earlier one. Inside values, `|XX` (two hex digits) stands for the byte XX: libvirt writes `"` as `|22` and
//! `|` as `|7c` in `displayName` and `annotation`; other values (the VNC password among them) it writes verbatim.
//! `displayName` is moreover percent-escaped (`/` `\` `%` as `%2f` `%5c` `%25`), which is also how the vSphere
//! API spells a VM's `name`, so [`Vmx::display_name`] keeps that escaping.
//!
//! For `<graphics type='vnc' port='5901' autoport='no' listen='0.0.0.0' passwd='nots3cr3t'/>` and
//! `<serial type='tcp'><source mode='bind' host='0.0.0.0' service='4567'/><protocol type='telnet'/>
//! <target port='0'/></serial>` libvirt 9.0 writes:
//!
//! ```text
//! RemoteDisplay.vnc.enabled = "true"
//! RemoteDisplay.vnc.port = "5901"
//! RemoteDisplay.vnc.ip = "0.0.0.0"
//! RemoteDisplay.vnc.password = "nots3cr3t"
//! serial0.present = "true"
//! serial0.fileType = "network"
//! serial0.fileName = "telnet://0.0.0.0:4567"
//! serial0.network.endPoint = "server"
//! serial0.yieldOnMsrRead = "true"
//! ```
//!
//! (`<protocol type='raw'>` gives `tcp://`, `tls` gives `ssl://`, `telnets` gives `telnets://`.)

use std::collections::HashMap;
use std::fmt;

/// ESXi 6.5/6.7's built-in VNC server for one VM (`RemoteDisplay.vnc.*`). `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteDisplay {
    /// The TCP port on the host (`RemoteDisplay.vnc.port`).
    pub port: u16,
    /// `RemoteDisplay.vnc.password`; `None` when absent or empty (no VNC authentication).
    pub password: Option<String>,
}

impl fmt::Debug for RemoteDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteDisplay")
            .field("port", &self.port)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// A parsed `.vmx` file. `Debug` shows only how many entries it has (values may be secrets).
#[derive(Clone, Default)]
pub struct Vmx {
    /// Key as last written and decoded value, in the order keys first appeared.
    entries: Vec<(String, String)>,
    /// Lower-cased key to its index in `entries`.
    index: HashMap<String, usize>,
}

impl fmt::Debug for Vmx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Vmx({} entries)", self.entries.len())
    }
}

/// Device types whose `fileName` names a host device rather than a file (libvirt's `<disk type='block'>`).
const HOST_DEVICE_TYPES: [&str; 3] = ["atapi-cdrom", "cdrom-raw", "scsi-passthru"];

/// The `fileName` of a CD-ROM drive with no medium.
const EMPTY_BACKING: &str = "emptyBackingString";

impl Vmx {
    /// Parses the text of a `.vmx` file. Errors name the line, never a value (values may be passwords).
    pub fn parse(text: &str) -> Result<Vmx, String> {
        let mut vmx = Vmx::default();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = parse_line(line).map_err(|e| format!(".vmx line {}: {e}", number + 1))?;
            vmx.set(key, value);
        }
        match vmx.get(".encoding") {
            Some(encoding) if !encoding.eq_ignore_ascii_case("UTF-8") => {
                Err(format!(".vmx: unsupported .encoding '{encoding}' (only UTF-8 is)"))
            }
            _ => Ok(vmx),
        }
    }

    fn set(&mut self, key: &str, value: String) {
        match self.index.get(&key.to_ascii_lowercase()) {
            Some(&i) => self.entries[i] = (key.to_string(), value),
            None => {
                self.index.insert(key.to_ascii_lowercase(), self.entries.len());
                self.entries.push((key.to_string(), value));
            }
        }
    }

    /// The value of `key` (case-insensitive), `|XX` escapes decoded.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.index.get(&key.to_ascii_lowercase()).map(|&i| self.entries[i].1.as_str())
    }

    /// Whether `key` holds a true boolean (`true`, `yes` or `1`, any case; VMware writes `TRUE`, libvirt `true`).
    pub fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| ["true", "yes", "1"].iter().any(|t| v.eq_ignore_ascii_case(t)))
    }

    /// `displayName`, percent escapes kept: the form the vSphere API uses for a VM's `name`.
    pub fn display_name(&self) -> Option<&str> {
        self.get("displayName")
    }

    /// `uuid.bios` (`"56 4d 9b ef ac d9 b4 e0-c8 f0 ae a8 b9 10 35 15"`) in the canonical lowercase
    /// 8-4-4-4-12 form; `None` when absent or not 16 hex bytes.
    pub fn bios_uuid(&self) -> Option<String> {
        let hex: String = self.get("uuid.bios")?.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let hex = hex.to_ascii_lowercase();
        Some(format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]))
    }

    /// `memsize`: the guest's memory in MiB.
    pub fn memory_mb(&self) -> Option<u32> {
        self.get("memsize")?.trim().parse().ok()
    }

    /// The built-in VNC server, when `RemoteDisplay.vnc.enabled` is true and `RemoteDisplay.vnc.port` a valid
    /// port (ESXi, like libvirt, has no port to offer otherwise).
    pub fn remote_display(&self) -> Option<RemoteDisplay> {
        if !self.flag("RemoteDisplay.vnc.enabled") {
            return None;
        }
        let port = self.get("RemoteDisplay.vnc.port")?.trim().parse().ok().filter(|&p: &u16| p != 0)?;
        let password = self.get("RemoteDisplay.vnc.password").filter(|p| !p.is_empty()).map(str::to_string);
        Some(RemoteDisplay { port, password })
    }

    /// The TCP port on the host that carries the first serial port: `serial0` present, `fileType` `network`,
    /// `network.endPoint` `server` (the default) and `fileName` `telnet://HOST:PORT` or `tcp://HOST:PORT` (also
    /// `tcp4`/`tcp6`; the host part is ignored). TLS variants (`ssl`, `telnets`) give `None`.
    pub fn network_serial_port(&self) -> Option<u16> {
        if !self.flag("serial0.present") || !self.get("serial0.fileType")?.eq_ignore_ascii_case("network") {
            return None;
        }
        if !self.get("serial0.network.endPoint").unwrap_or("server").eq_ignore_ascii_case("server") {
            return None;
        }
        let (scheme, rest) = self.get("serial0.fileName")?.split_once("://")?;
        if !["telnet", "tcp", "tcp4", "tcp6"].iter().any(|s| scheme.eq_ignore_ascii_case(s)) {
            return None;
        }
        let authority = rest.split(['/', '#']).next().unwrap_or_default();
        let (_, port) = authority.rsplit_once(':')?;
        port.parse().ok().filter(|&p: &u16| p != 0)
    }

    /// The `guestinfo.*` entries (full keys as written, e.g. `guestinfo.userdata`), in file order.
    pub fn guestinfo(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .filter(|(k, _)| k.len() > 10 && k[..10].eq_ignore_ascii_case("guestinfo."))
            .cloned()
            .collect()
    }

    /// The files the VM's disks and CD-ROMs use: the `fileName` of every present `scsiX:Y`, `ideX:Y`, `sataX:Y`
    /// and `nvmeX:Y` device, as written (libvirt writes absolute `/vmfs/volumes/DATASTORE/...` paths, VMware
    /// often paths relative to the `.vmx`), in file order. Drives backed by a host device (`deviceType`
    /// `atapi-cdrom`, `cdrom-raw`, `scsi-passthru`) and empty CD-ROM drives (`emptyBackingString`) use no file
    /// and are left out.
    pub fn referenced_files(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter_map(|(key, value)| {
                let device = disk_device(key)?;
                let present = self.flag(&format!("{device}.present"));
                let device_type = self.get(&format!("{device}.deviceType")).unwrap_or_default();
                let host_device = HOST_DEVICE_TYPES.iter().any(|t| device_type.eq_ignore_ascii_case(t));
                let file = present && !host_device && !value.is_empty() && value != EMPTY_BACKING;
                file.then(|| value.clone())
            })
            .collect()
    }
}

/// Splits one non-blank, non-comment line into its key and decoded value.
fn parse_line(line: &str) -> Result<(&str, String), String> {
    let (key, raw) = line.split_once('=').ok_or("expected 'key = \"value\"'")?;
    let key = key.trim();
    if key.is_empty() || key.contains(|c: char| c.is_whitespace() || c == '"' || c == '#') {
        return Err("invalid key".into());
    }
    let raw = raw.trim();
    let value = match raw.strip_prefix('"') {
        Some(quoted) => {
            let (inner, rest) = quoted.split_once('"').ok_or_else(|| format!("{key}: unterminated quote"))?;
            let rest = rest.trim_start();
            if !rest.is_empty() && !rest.starts_with('#') {
                return Err(format!("{key}: unexpected text after the closing quote"));
            }
            inner
        }
        None => raw.split('#').next().unwrap_or_default().trim_end(),
    };
    Ok((key, unescape(value).map_err(|e| format!("{key}: {e}"))?))
}

/// Decodes `|XX` escapes; a `|` not followed by two hex digits stays as it is.
fn unescape(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some(&[b'|', high, low]) => hex_digit(high).zip(hex_digit(low)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "escapes decode to invalid UTF-8".to_string())
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

/// `scsi0:1` for a key `scsi0:1.fileName` (any case) of a disk or CD-ROM device; `None` for other keys.
fn disk_device(key: &str) -> Option<&str> {
    let (device, field) = key.split_once('.')?;
    if !field.eq_ignore_ascii_case("fileName") {
        return None;
    }
    let (controller, unit) = device.split_once(':')?;
    let bus_len = controller.find(|c: char| c.is_ascii_digit())?;
    let bus = &controller[..bus_len];
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let known = ["scsi", "ide", "sata", "nvme"].iter().any(|b| bus.eq_ignore_ascii_case(b));
    (known && numeric(&controller[bus_len..]) && numeric(unit)).then_some(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What libvirt 9.0's vmx writer (Debian bookworm's libvirt0; format strings checked against its
    /// libvirt.so, order as in libvirt's tests/xml2vmxdata) produces on an ESXi 6.5 host (virtualHW 13) for
    /// os-autoinst's domain XML (sshVirtsh.pm: description, memory, vcpu, os arch, add_disk on vmware (IDE,
    /// `[datastore1] openQA/...`), add_interface, add_pty with VMWARE_SERIAL_PORT 4567 and telnet, add_vnc with
    /// $testapi::password), followed by the lines define_and_start appends with `echo >>`.
    const OS_AUTOINST_VMX: &str = r#".encoding = "UTF-8"
config.version = "8"
virtualHW.version = "13"
guestOS = "other-64"
uuid.bios = "56 4D 9d 2a 12 34 56 78-9a bc de f0 12 34 56 78"
displayName = "openQA-SUT-1"
annotation = "openQA WebUI: no-webui-set (1): sle-15-SP6-Online-x86_64-|22textmode|22|7c2"
memsize = "2048"
numvcpus = "1"
RemoteDisplay.vnc.enabled = "true"
RemoteDisplay.vnc.port = "5901"
RemoteDisplay.vnc.ip = "0.0.0.0"
RemoteDisplay.vnc.password = "nots3cr3t"
ide0:0.present = "true"
ide0:0.deviceType = "ata-hardDisk"
ide0:0.fileName = "/vmfs/volumes/datastore1/openQA/SLES-15-SP6-x86_64_openQA-SUT-1_thinfile.vmdk"
ide0:1.present = "true"
ide0:1.deviceType = "cdrom-image"
ide0:1.fileName = "/vmfs/volumes/datastore1/openQA/SLE-15-SP6-Online-x86_64-Build1.iso"
floppy0.present = "false"
floppy1.present = "false"
ethernet0.present = "true"
ethernet0.virtualDev = "e1000"
ethernet0.networkName = "VM Network"
ethernet0.connectionType = "bridged"
ethernet0.addressType = "generated"
ethernet0.generatedAddress = "00:0c:29:12:34:56"
serial0.present = "true"
serial0.fileType = "network"
serial0.fileName = "telnet://0.0.0.0:4567"
serial0.network.endPoint = "server"
serial0.yieldOnMsrRead = "true"
pciBridge0.present = "true"
pciBridge4.present = "true"
pciBridge4.virtualDev = "pcieRootPort"
pciBridge4.functions = "8"
vmci0.present = "true"
bios.bootDelay = "10000"
guestinfo.userdata.encoding = "gzip+base64"
guestinfo.metadata.encoding = "gzip+base64"
guestinfo.userdata = "H4sIAAAAAAAAA8tIzcnJBwCGphA2BgAAAA=="
guestinfo.metadata = "H4sIAAAAAAAAAytJLS4BAAx+f9gEAAAA"
"#;

    fn os_autoinst() -> Vmx {
        Vmx::parse(OS_AUTOINST_VMX).unwrap()
    }

    #[test]
    fn reads_what_libvirt_writes_for_os_autoinst() {
        let vmx = os_autoinst();
        assert_eq!(vmx.display_name(), Some("openQA-SUT-1"));
        assert_eq!(vmx.bios_uuid().as_deref(), Some("564d9d2a-1234-5678-9abc-def012345678"));
        assert_eq!(vmx.memory_mb(), Some(2048));
        assert_eq!(vmx.remote_display(), Some(RemoteDisplay { port: 5901, password: Some("nots3cr3t".into()) }));
        assert_eq!(vmx.network_serial_port(), Some(4567));
        assert_eq!(
            vmx.referenced_files(),
            [
                "/vmfs/volumes/datastore1/openQA/SLES-15-SP6-x86_64_openQA-SUT-1_thinfile.vmdk",
                "/vmfs/volumes/datastore1/openQA/SLE-15-SP6-Online-x86_64-Build1.iso"
            ]
        );
        assert_eq!(vmx.get("bios.bootDelay"), Some("10000"));
        assert_eq!(
            vmx.get("annotation"),
            Some("openQA WebUI: no-webui-set (1): sle-15-SP6-Online-x86_64-\"textmode\"|2")
        );
    }

    #[test]
    fn guestinfo_in_file_order_with_full_keys() {
        let info = os_autoinst().guestinfo();
        let keys: Vec<&str> = info.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["guestinfo.userdata.encoding", "guestinfo.metadata.encoding", "guestinfo.userdata", "guestinfo.metadata"]
        );
        assert_eq!(info[2].1, "H4sIAAAAAAAAA8tIzcnJBwCGphA2BgAAAA==");
    }

    #[test]
    fn keys_are_case_insensitive_and_later_lines_win() {
        let text = format!(
            "{OS_AUTOINST_VMX}bios.bootdelay = \"0\"\nREMOTEDISPLAY.VNC.PORT = \"5905\"\nGuestInfo.UserData = \"new\"\n"
        );
        let vmx = Vmx::parse(&text).unwrap();
        assert_eq!(vmx.get("BIOS.BOOTDELAY"), Some("0"));
        assert_eq!(vmx.remote_display().map(|r| r.port), Some(5905));
        let info = vmx.guestinfo();
        assert_eq!(info.len(), 4, "an override keeps the entry's place");
        assert_eq!(info[2], ("GuestInfo.UserData".to_string(), "new".to_string()));
        assert_eq!(vmx.entries.len(), os_autoinst().entries.len());
    }

    #[test]
    fn comments_blank_lines_and_vmware_spelling() {
        let vmx = Vmx::parse(concat!(
            "#!/usr/bin/vmware\n",
            "\n",
            "  # a comment\n",
            ".encoding = \"utf-8\"\r\n",
            "displayName = \"a%2fb |7c |22q|22\" # trailing comment\n",
            "RemoteDisplay.vnc.enabled = TRUE\n",
            "RemoteDisplay.vnc.port = \"5900\"\n",
            "memsize = 512\n",
        ))
        .unwrap();
        assert_eq!(vmx.display_name(), Some("a%2fb | \"q\""));
        assert_eq!(vmx.remote_display(), Some(RemoteDisplay { port: 5900, password: None }));
        assert_eq!(vmx.memory_mb(), Some(512));
        assert_eq!(vmx.network_serial_port(), None);
        assert!(vmx.referenced_files().is_empty());
        assert!(vmx.guestinfo().is_empty());
    }

    #[test]
    fn a_pipe_without_hex_digits_stays() {
        let vmx = Vmx::parse("a = \"x|y\"\nb = \"x|\"\nc = \"|4\"\nd = \"|c3|a4\"\n").unwrap();
        assert_eq!(
            (vmx.get("a"), vmx.get("b"), vmx.get("c"), vmx.get("d")),
            (Some("x|y"), Some("x|"), Some("|4"), Some("ä"))
        );
    }

    #[test]
    fn remote_display_needs_enabled_and_a_port() {
        let vnc = |lines: &str| Vmx::parse(lines).unwrap().remote_display();
        assert_eq!(vnc("RemoteDisplay.vnc.port = \"5901\"\n"), None);
        assert_eq!(vnc("RemoteDisplay.vnc.enabled = \"false\"\nRemoteDisplay.vnc.port = \"5901\"\n"), None);
        assert_eq!(vnc("RemoteDisplay.vnc.enabled = \"true\"\n"), None);
        assert_eq!(vnc("RemoteDisplay.vnc.enabled = \"true\"\nRemoteDisplay.vnc.port = \"x\"\n"), None);
        let empty_password = concat!(
            "RemoteDisplay.vnc.enabled = \"true\"\n",
            "RemoteDisplay.vnc.port = \"5902\"\n",
            "RemoteDisplay.vnc.password = \"\"\n",
        );
        assert_eq!(vnc(empty_password), Some(RemoteDisplay { port: 5902, password: None }));
    }

    #[test]
    fn serial_port_forms() {
        let port = |file_name: &str, extra: &str| {
            let head = "serial0.present = \"true\"\nserial0.fileType = \"network\"\n";
            let text = format!("{head}serial0.fileName = \"{file_name}\"\n{extra}");
            Vmx::parse(&text).unwrap().network_serial_port()
        };
        assert_eq!(port("telnet://0.0.0.0:4567", ""), Some(4567));
        assert_eq!(port("tcp://0.0.0.0:4568", "serial0.network.endPoint = \"server\"\n"), Some(4568));
        assert_eq!(port("telnet://:4569", ""), Some(4569));
        assert_eq!(port("tcp://[::]:4570", ""), Some(4570));
        assert_eq!(port("TELNET://0.0.0.0:4571/", ""), Some(4571));
        assert_eq!(port("ssl://0.0.0.0:4567", ""), None);
        assert_eq!(port("telnets://0.0.0.0:4567", ""), None);
        assert_eq!(port("telnet://10.0.0.1:4567", "serial0.network.endPoint = \"client\"\n"), None);
        assert_eq!(port("telnet://0.0.0.0", ""), None);
        assert_eq!(port("telnet://0.0.0.0:0", ""), None);
        assert_eq!(port("telnet://0.0.0.0:4567", "serial0.present = \"false\"\n"), None);
        let file = "serial0.present = \"true\"\nserial0.fileType = \"file\"\nserial0.fileName = \"serial.log\"\n";
        assert_eq!(Vmx::parse(file).unwrap().network_serial_port(), None);
    }

    #[test]
    fn referenced_files_of_every_bus_but_not_host_devices_or_empty_drives() {
        let vmx = Vmx::parse(concat!(
            "scsi0.present = \"true\"\n",
            "scsi0:0.present = \"true\"\n",
            "scsi0:0.deviceType = \"scsi-hardDisk\"\n",
            "scsi0:0.fileName = \"/vmfs/volumes/datastore/directory/a.vmdk\"\n",
            "scsi0:1.present = \"TRUE\"\n",
            "scsi0:1.deviceType = \"cdrom-raw\"\n",
            "scsi0:1.fileName = \"auto detect\"\n",
            "sata0:0.present = \"TRUE\"\n",
            "sata0:0.fileName = \"b.vmdk\"\n",
            "ide1:0.present = \"true\"\n",
            "ide1:0.deviceType = \"cdrom-image\"\n",
            "ide1:0.fileName = \"emptyBackingString\"\n",
            "ide1:1.present = \"true\"\n",
            "ide1:1.deviceType = \"atapi-cdrom\"\n",
            "ide1:1.fileName = \"/dev/scd0\"\n",
            "nvme0:3.present = \"true\"\n",
            "nvme0:3.fileName = \"[datastore1] c/c.vmdk\"\n",
            "ide0:0.present = \"false\"\n",
            "ide0:0.fileName = \"absent.vmdk\"\n",
            "floppy0.present = \"true\"\n",
            "floppy0.fileName = \"floppy.flp\"\n",
            "ethernet0.fileName = \"x\"\n",
            "scsi1.fileName = \"controller\"\n",
        ))
        .unwrap();
        assert_eq!(
            vmx.referenced_files(),
            ["/vmfs/volumes/datastore/directory/a.vmdk", "b.vmdk", "[datastore1] c/c.vmdk"]
        );
    }

    #[test]
    fn bios_uuid_must_be_sixteen_bytes() {
        let uuid = |v: &str| Vmx::parse(&format!("uuid.bios = \"{v}\"\n")).unwrap().bios_uuid();
        assert_eq!(
            uuid("42 00 93 72 17 da be 73-77 9d 00 7c cf 1b d2 28").as_deref(),
            Some("42009372-17da-be73-779d-007ccf1bd228")
        );
        assert_eq!(
            uuid("42009372-17da-be73-779d-007ccf1bd228").as_deref(),
            Some("42009372-17da-be73-779d-007ccf1bd228")
        );
        assert_eq!(uuid("42 00 93 72 17 da be 73-77 9d 00 7c cf 1b d2"), None);
        assert_eq!(uuid("42 00 93 72 17 da be 73-77 9d 00 7c cf 1b d2 2g"), None);
        assert_eq!(Vmx::parse("").unwrap().bios_uuid(), None);
    }

    #[test]
    fn errors_name_the_line_but_not_the_value() {
        let err = |text: &str| Vmx::parse(text).unwrap_err();
        let e = err("a = \"1\"\nRemoteDisplay.vnc.password = \"secret\" oops\n");
        assert_eq!(e, ".vmx line 2: RemoteDisplay.vnc.password: unexpected text after the closing quote");
        let e = err("RemoteDisplay.vnc.password = \"secret\n");
        assert_eq!(e, ".vmx line 1: RemoteDisplay.vnc.password: unterminated quote");
        assert_eq!(err("just words\n"), ".vmx line 1: expected 'key = \"value\"'");
        assert_eq!(err(" = \"x\"\n"), ".vmx line 1: invalid key");
        assert_eq!(err("two words = \"x\"\n"), ".vmx line 1: invalid key");
        assert_eq!(err("k = \"|ff\"\n"), ".vmx line 1: k: escapes decode to invalid UTF-8");
        assert_eq!(err(".encoding = \"windows-1252\"\n"), ".vmx: unsupported .encoding 'windows-1252' (only UTF-8 is)");
    }

    #[test]
    fn debug_hides_values() {
        let vmx = os_autoinst();
        assert!(!format!("{vmx:?}").contains("nots3cr3t"));
        assert!(!format!("{:?}", vmx.remote_display()).contains("nots3cr3t"));
    }
}
