//! Container views (`ViewManager.CreateContainerView`): live lists of the entities below a container, of some
//! types. What pyVmomi and govmomi use to list VMs.

use std::collections::HashMap;

use crate::objects::{is_a, Ref, World};
use crate::sessions::random_hex;

/// A container view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub container: Ref,
    /// The types shown (all entities when empty).
    pub types: Vec<String>,
    pub recursive: bool,
}

/// The properties that lead from an entity to the entities below it.
const DOWN: [&str; 8] =
    ["childEntity", "vmFolder", "hostFolder", "datastoreFolder", "networkFolder", "host", "resourcePool", "vm"];

impl View {
    /// What the view shows now: the entities below the container (recursively or not) of the view's types.
    pub fn contents(&self, world: &World) -> Vec<Ref> {
        let mut seen: Vec<Ref> = Vec::new();
        let mut frontier = vec![self.container.clone()];
        while let Some((ty, id)) = frontier.pop() {
            let Some(mo) = world.resolve(&ty, &id) else { continue };
            for path in DOWN {
                for child in world.references(&mo, path).unwrap_or_default() {
                    if seen.contains(&child) || child == self.container {
                        continue;
                    }
                    if self.recursive {
                        frontier.push(child.clone());
                    }
                    seen.push(child);
                }
            }
        }
        seen.retain(|(ty, _)| self.types.is_empty() || self.types.iter().any(|t| is_a(ty, t)));
        seen
    }
}

/// The open container views.
#[derive(Debug, Default)]
pub struct Views {
    by_id: HashMap<String, View>,
}

impl Views {
    /// Creates a view for the session with key `session_key`; returns its managed object id.
    pub fn create(&mut self, session_key: &str, view: View) -> String {
        let id = format!("session[{session_key}]{}", random_hex(16));
        self.by_id.insert(id.clone(), view);
        id
    }

    pub fn destroy(&mut self, id: &str) -> bool {
        self.by_id.remove(id).is_some()
    }

    pub fn get(&self, id: &str) -> Option<&View> {
        self.by_id.get(id)
    }
}
