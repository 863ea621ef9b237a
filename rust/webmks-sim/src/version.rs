//! The simulated product version (`--esxi-version`): what `about` and `/sdk/vimServiceVersions.xml` announce,
//! which API dialect tickets are written in, and whether VMs get ESXi's built-in VNC server (up to 6.7).

use crate::soap::parse_version;

/// A vSphere release the simulator can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Release {
    V6_5,
    V6_7,
    V7_0,
    V8_0,
}

/// The `about` fields of one product at one release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct About {
    /// `about.version`, e.g. `7.0.3`.
    pub version: &'static str,
    /// `about.build`.
    pub build: &'static str,
    /// `about.apiVersion`, also the newest version in vimServiceVersions.xml.
    pub api_version: &'static str,
}

/// Every API version vSphere ever announced, newest first (the `priorVersions` of vimServiceVersions.xml are
/// the ones after a release's own).
const API_VERSIONS: [&str; 26] = [
    "8.0.2.0", "8.0.1.0", "8.0.0.2", "8.0.0.1", "8.0.0.0", "7.0.3.2", "7.0.3.1", "7.0.3.0", "7.0.2.1", "7.0.2.0",
    "7.0.1.1", "7.0.1.0", "7.0.0.2", "7.0.0.1", "7.0.0.0", "6.7.3", "6.7.2", "6.7.1", "6.7", "6.5", "6.0", "5.5",
    "5.1", "5.0", "4.1", "4.0",
];

impl Release {
    /// Parses `6.5`, `6.7`, `7.0` or `8.0`.
    pub fn parse(s: &str) -> Result<Release, String> {
        match s {
            "6.5" => Ok(Release::V6_5),
            "6.7" => Ok(Release::V6_7),
            "7.0" => Ok(Release::V7_0),
            "8.0" => Ok(Release::V8_0),
            other => Err(format!("unknown ESXi version '{other}' (6.5, 6.7, 7.0 or 8.0)")),
        }
    }

    /// A standalone ESXi host of this release (the last update of each).
    pub fn esxi(self) -> About {
        match self {
            Release::V6_5 => About { version: "6.5.0", build: "13932383", api_version: "6.5" },
            Release::V6_7 => About { version: "6.7.0", build: "14320388", api_version: "6.7.3" },
            Release::V7_0 => About { version: "7.0.3", build: "18644231", api_version: "7.0.3.0" },
            Release::V8_0 => About { version: "8.0.2", build: "22380479", api_version: "8.0.2.0" },
        }
    }

    /// A vCenter Server of this release.
    pub fn vcenter(self) -> About {
        match self {
            Release::V6_5 => About { version: "6.5.0", build: "14020092", api_version: "6.5" },
            Release::V6_7 => About { version: "6.7.0", build: "14367737", api_version: "6.7.3" },
            Release::V7_0 => About { version: "7.0.3", build: "18700403", api_version: "7.0.3.0" },
            Release::V8_0 => About { version: "8.0.2", build: "22385739", api_version: "8.0.2.0" },
        }
    }

    /// `licenseProductVersion`: the major version with `.0`.
    pub fn license_version(self) -> &'static str {
        match self {
            Release::V6_5 | Release::V6_7 => "6.0",
            Release::V7_0 => "7.0",
            Release::V8_0 => "8.0",
        }
    }

    /// Whether a VM's `RemoteDisplay.vnc.*` keys give it a VNC server on the host (removed in ESXi 7.0).
    pub fn has_builtin_vnc(self) -> bool {
        self <= Release::V6_7
    }
}

/// The API version a ticket is written for: the lower of the one the client asked for (`None`: the oldest
/// dialect) and the host's own.
pub fn effective_version(requested: Option<Vec<u32>>, host_api: &str) -> Option<Vec<u32>> {
    let host = parse_version(host_api)?;
    requested.map(|r| if r < host { r } else { host })
}

/// `GET /sdk/vimServiceVersions.xml` for a host whose newest API version is `api_version`: what pyVmomi's
/// SmartConnect reads to pick its dialect.
pub fn service_versions_xml(api_version: &str) -> String {
    let prior: String = API_VERSIONS
        .iter()
        .skip_while(|v| **v != api_version)
        .skip(1)
        .map(|v| format!("<version>{v}</version>"))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<namespaces version=\"1.0\">\n<namespace>\n<name>urn:vim25</name>\n\
         <version>{api_version}</version>\n<priorVersions>{prior}</priorVersions>\n</namespace>\n</namespaces>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::parse_tree;

    #[test]
    fn releases() {
        assert_eq!(Release::parse("7.0"), Ok(Release::V7_0));
        assert!(Release::parse("7").is_err());
        assert!(Release::V6_7.has_builtin_vnc() && !Release::V7_0.has_builtin_vnc());
        assert_eq!(Release::V6_5.esxi().api_version, "6.5");
        for r in [Release::V6_5, Release::V6_7, Release::V7_0, Release::V8_0] {
            assert!(API_VERSIONS.contains(&r.esxi().api_version), "{r:?}");
            assert!(API_VERSIONS.contains(&r.vcenter().api_version), "{r:?}");
        }
    }

    #[test]
    fn tickets_use_the_lower_version() {
        let v = |s: &str| parse_version(s);
        assert_eq!(effective_version(v("8.0.2.0"), "6.7.3"), v("6.7.3"));
        assert_eq!(effective_version(v("7.0"), "8.0.2.0"), v("7.0"));
        assert_eq!(effective_version(None, "8.0.2.0"), None);
    }

    #[test]
    fn service_versions_follow_the_release() {
        let doc = parse_tree(service_versions_xml("6.7.3").as_bytes()).unwrap();
        let ns = doc.child("namespace").unwrap();
        assert_eq!(ns.text_of("version"), Some("6.7.3"));
        let prior: Vec<&str> =
            ns.child("priorVersions").unwrap().children("version").map(|v| v.text.as_str()).collect();
        assert_eq!(prior[..3], ["6.7.2", "6.7.1", "6.7"]);
        assert!(!prior.contains(&"7.0.0.0"));
        assert!(service_versions_xml("8.0.2.0").contains("<priorVersions><version>8.0.1.0</version>"));
    }
}
