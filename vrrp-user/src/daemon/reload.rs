//! What a reload would change: the running configuration against the one
//! just read (pure; instances are matched by name, as keepalived does).

use crate::config::{self, Instance};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadDiff {
    /// In both, identical (where in the file they are written aside).
    pub unchanged: Vec<String>,
    /// In both, different.
    pub changed: Vec<String>,
    /// Only in the new file.
    pub added: Vec<String>,
    /// Only in the running configuration.
    pub removed: Vec<String>,
    /// `global_defs`, a tracker definition or a sync group differs.
    pub shared_changed: bool,
}

impl ReloadDiff {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty()
            && self.added.is_empty()
            && self.removed.is_empty()
            && !self.shared_changed
    }
}

/// Where an instance is written in the file does not change what it does.
fn same_instance(a: &Instance, b: &Instance) -> bool {
    let mut a = a.clone();
    a.defined_at = b.defined_at.clone();
    a == *b
}

pub fn diff(running: &config::Config, new: &config::Config) -> ReloadDiff {
    let mut d = ReloadDiff::default();
    for n in &new.instances {
        match running.instance(&n.name) {
            Some(r) if same_instance(r, n) => d.unchanged.push(n.name.clone()),
            Some(_) => d.changed.push(n.name.clone()),
            None => d.added.push(n.name.clone()),
        }
    }
    d.removed = running
        .instances
        .iter()
        .filter(|r| new.instance(&r.name).is_none())
        .map(|r| r.name.clone())
        .collect();
    // Tracker and group blocks carry their own locations too.
    let strip = |c: &config::Config| {
        let mut c = c.clone();
        c.instances.clear();
        serde_json::to_value(&c).ok()
    };
    d.shared_changed = strip(running) != strip(new);
    d
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn load(text: &str) -> config::Config {
        config::load_str(text, Path::new("/etc/keepalived/keepalived.conf"))
            .unwrap()
            .config
    }

    fn inst(name: &str, vrid: u8, priority: u8) -> String {
        format!(
            "vrrp_instance {name} {{\n interface eth0\n virtual_router_id {vrid}\n priority {priority}\n \
             virtual_ipaddress {{\n 192.0.2.{vrid}\n }}\n}}\n"
        )
    }

    #[test]
    fn instances_are_matched_by_name() {
        let running = load(&format!(
            "{}{}{}",
            inst("A", 1, 100),
            inst("B", 2, 100),
            inst("C", 3, 100)
        ));
        // B moves in the file and changes nothing; C changes; A goes; D comes.
        let new = load(&format!(
            "\n\n{}{}{}",
            inst("C", 3, 150),
            inst("B", 2, 100),
            inst("D", 4, 100)
        ));
        let d = diff(&running, &new);
        assert_eq!(d.unchanged, vec!["B"]);
        assert_eq!(d.changed, vec!["C"]);
        assert_eq!(d.added, vec!["D"]);
        assert_eq!(d.removed, vec!["A"]);
        assert!(!d.shared_changed);
        assert!(!d.is_empty());
    }

    #[test]
    fn the_same_file_is_no_change() {
        let text = format!("global_defs {{\n router_id r1\n}}\n{}", inst("A", 1, 100));
        let d = diff(&load(&text), &load(&text));
        assert!(d.is_empty());
        assert_eq!(d.unchanged, vec!["A"]);
    }

    #[test]
    fn global_defs_count_as_shared() {
        let a = load(&format!(
            "global_defs {{\n router_id r1\n}}\n{}",
            inst("A", 1, 100)
        ));
        let b = load(&format!(
            "global_defs {{\n router_id r2\n}}\n{}",
            inst("A", 1, 100)
        ));
        assert!(diff(&a, &b).shared_changed);
    }
}
