//! Datastores (`--datastore NAME=DIR`): a directory of this machine per datastore, the names vSphere gives
//! their files (`[NAME] dir/file`, `/vmfs/volumes/NAME-or-UUID/dir/file`, or a name relative to the .vmx),
//! and the mapping of those names to local paths that never leave the directory.

use std::path::PathBuf;

use crate::inventory::uuid_from;

/// One datastore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datastore {
    pub name: String,
    pub dir: PathBuf,
    /// The VMFS-style UUID (`xxxxxxxx-xxxxxxxx-xxxx-xxxxxxxxxxxx`), also the managed object id, as ESXi has it.
    pub uuid: String,
}

/// Parses `NAME=DIR`; the directory must exist.
pub fn parse_datastore_spec(spec: &str) -> Result<Datastore, String> {
    let (name, dir) = spec.split_once('=').ok_or_else(|| format!("datastore '{spec}' is not NAME=DIR"))?;
    if name.is_empty() || name.contains(['/', '[', ']']) {
        return Err(format!("datastore name '{name}' is empty or contains '/', '[' or ']'"));
    }
    let dir = std::fs::canonicalize(dir).map_err(|e| format!("datastore {name}: {dir}: {e}"))?;
    if !dir.is_dir() {
        return Err(format!("datastore {name}: {} is not a directory", dir.display()));
    }
    let u = uuid_from(&format!("datastore:{name}")).replace('-', "");
    let uuid = format!("{}-{}-{}-{}", &u[..8], &u[8..16], &u[16..20], &u[20..32]);
    Ok(Datastore { name: name.to_string(), dir, uuid })
}

impl Datastore {
    /// Where the host mounts it: `/vmfs/volumes/UUID`.
    pub fn mount_path(&self) -> String {
        format!("/vmfs/volumes/{}", self.uuid)
    }

    /// `summary.url` / `info.url`.
    pub fn url(&self) -> String {
        format!("ds:///vmfs/volumes/{}/", self.uuid)
    }

    /// The local path of `relative` (a path inside the datastore, `/`-separated). Refuses absolute paths, `.`
    /// and `..` components, and anything that would resolve outside the datastore directory.
    pub fn local(&self, relative: &str) -> Result<PathBuf, String> {
        if relative.contains(['\0', '\\']) || relative.split('/').any(|c| matches!(c, "" | "." | "..")) {
            return Err(format!("'{relative}' is not a path inside datastore {}", self.name));
        }
        let path = self.dir.join(relative);
        // Symbolic links inside the datastore must not lead out of it either: check the deepest existing part.
        let mut existing = path.as_path();
        while !existing.exists() {
            existing = existing.parent().unwrap_or(&self.dir);
        }
        let real = std::fs::canonicalize(existing).map_err(|e| format!("{}: {e}", existing.display()))?;
        if !real.starts_with(&self.dir) {
            return Err(format!("'{relative}' leads out of datastore {}", self.name));
        }
        Ok(path)
    }
}

/// A file name as vSphere writes it: `[DATASTORE] path/inside`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatastorePath {
    pub datastore: String,
    pub path: String,
}

impl DatastorePath {
    /// Parses `[DATASTORE] path` (the space after `]` is optional, as on ESXi).
    pub fn parse(s: &str) -> Option<DatastorePath> {
        let rest = s.strip_prefix('[')?;
        let (datastore, path) = rest.split_once(']')?;
        Some(DatastorePath { datastore: datastore.to_string(), path: path.trim_start().to_string() })
    }

    /// The directory part (`openQA` of `openQA/x.vmx`), empty at the top level.
    pub fn dir(&self) -> &str {
        self.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
    }
}

impl std::fmt::Display for DatastorePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.datastore, self.path)
    }
}

/// The datastores of the host.
#[derive(Debug, Clone, Default)]
pub struct Datastores {
    pub list: Vec<Datastore>,
}

impl Datastores {
    pub fn new(list: Vec<Datastore>) -> Result<Datastores, String> {
        for (i, d) in list.iter().enumerate() {
            if list[..i].iter().any(|o| o.name == d.name) {
                return Err(format!("datastore {} given twice", d.name));
            }
        }
        Ok(Datastores { list })
    }

    pub fn by_name(&self, name: &str) -> Option<&Datastore> {
        self.list.iter().find(|d| d.name == name)
    }

    pub fn by_uuid(&self, uuid: &str) -> Option<&Datastore> {
        self.list.iter().find(|d| d.uuid == uuid)
    }

    /// The local path of a datastore path.
    pub fn local(&self, p: &DatastorePath) -> Result<PathBuf, String> {
        let ds = self.by_name(&p.datastore).ok_or_else(|| format!("no datastore named '{}'", p.datastore))?;
        ds.local(&p.path)
    }

    /// A file name from a .vmx (`vmx` being the .vmx's own datastore path) as a datastore path: names without
    /// a `/` are next to the .vmx; `/vmfs/volumes/NAME-or-UUID/…` and `[NAME] …` name a datastore. `None` for
    /// files outside every datastore.
    pub fn resolve_vmx_file(&self, vmx: &DatastorePath, file: &str) -> Option<DatastorePath> {
        if let Some(p) = DatastorePath::parse(file) {
            return Some(p);
        }
        if let Some(rest) = file.strip_prefix("/vmfs/volumes/") {
            let (volume, path) = rest.split_once('/')?;
            let ds = self.by_name(volume).or_else(|| self.by_uuid(volume))?;
            return Some(DatastorePath { datastore: ds.name.clone(), path: path.to_string() });
        }
        if file.starts_with('/') {
            return None;
        }
        let path = match vmx.dir() {
            "" => file.to_string(),
            dir => format!("{dir}/{file}"),
        };
        Some(DatastorePath { datastore: vmx.datastore.clone(), path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_datastore() -> (Datastore, PathBuf) {
        let base = std::env::temp_dir().join(format!("webmks-sim-ds-{}", crate::sessions::random_hex(6)));
        std::fs::create_dir_all(base.join("ds/openQA")).unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        std::os::unix::fs::symlink(base.join("outside"), base.join("ds/escape")).unwrap();
        let ds = parse_datastore_spec(&format!("datastore1={}", base.join("ds").display())).unwrap();
        (ds, base)
    }

    #[test]
    fn paths_stay_inside() {
        let (ds, base) = temp_datastore();
        assert_eq!(ds.local("openQA/a.vmx").unwrap(), ds.dir.join("openQA/a.vmx"));
        assert_eq!(ds.local("new/dir/file").unwrap(), ds.dir.join("new/dir/file"));
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "openQA/../../x",
            "./a",
            "a/./b",
            "a//b",
            "a/",
            "escape/x",
            "escape",
            "a\0b",
            "a\\b",
        ] {
            assert!(ds.local(bad).is_err(), "{bad:?}");
        }
        assert!(ds.uuid.len() == 35 && ds.uuid.matches('-').count() == 3, "{}", ds.uuid);
        assert_eq!(ds.mount_path(), format!("/vmfs/volumes/{}", ds.uuid));
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn specs() {
        assert!(parse_datastore_spec("nodir").is_err());
        assert!(parse_datastore_spec("=/tmp").is_err());
        assert!(parse_datastore_spec("a/b=/tmp").is_err());
        assert!(parse_datastore_spec("x=/nonexistent/dir").is_err());
        let a = parse_datastore_spec("a=/tmp").unwrap();
        assert!(Datastores::new(vec![a.clone(), a]).is_err());
    }

    #[test]
    fn vmx_file_names() {
        let ds = Datastores::new(vec![parse_datastore_spec("datastore1=/tmp").unwrap()]).unwrap();
        let uuid = ds.list[0].uuid.clone();
        let vmx = DatastorePath::parse("[datastore1] openQA/vm.vmx").unwrap();
        assert_eq!(vmx.dir(), "openQA");
        assert_eq!(vmx.to_string(), "[datastore1] openQA/vm.vmx");
        let p = |s: &str| ds.resolve_vmx_file(&vmx, s).map(|p| p.to_string());
        assert_eq!(p("disk.vmdk").as_deref(), Some("[datastore1] openQA/disk.vmdk"));
        assert_eq!(p(&format!("/vmfs/volumes/{uuid}/openQA/d.vmdk")).as_deref(), Some("[datastore1] openQA/d.vmdk"));
        assert_eq!(p("/vmfs/volumes/datastore1/iso/x.iso").as_deref(), Some("[datastore1] iso/x.iso"));
        assert_eq!(p("[other] a.iso").as_deref(), Some("[other] a.iso"));
        assert_eq!(p("/usr/lib/vmware/isoimages/linux.iso"), None);
        assert_eq!(p("/vmfs/volumes/unknown/x"), None);
        assert_eq!(DatastorePath::parse("[ds]x.vmx").unwrap().path, "x.vmx");
        assert_eq!(DatastorePath::parse("no brackets"), None);
    }
}
