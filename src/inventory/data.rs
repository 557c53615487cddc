//! The inventory graph: hosts, groups, their direct variables and memberships.
//!
//! Mirrors Ansible's `InventoryData`/`Group`/`Host` (`ansible/inventory/*.py`): the same
//! operations (`add_group`, `add_host`, `add_child`, `set_variable`, `reconcile`) with the same
//! rules — a group cannot contain itself or an ancestor, a host's first port wins, groups
//! without parents hang under `all`, hosts in no group go to `ungrouped` — and the same host
//! order when a group's hosts are enumerated.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::{Map, Value};

pub type Vars = Map<String, Value>;

#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    /// Direct member hosts, in the order they were added.
    pub hosts: Vec<usize>,
    host_set: HashSet<usize>,
    pub vars: Vars,
    pub children: Vec<usize>,
    pub parents: Vec<usize>,
    /// `ansible_group_priority` (default 1).
    pub priority: i64,
    /// Longest distance from `all` (computed by [`Data::reconcile`]).
    pub depth: usize,
}

#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub vars: Vars,
    /// Groups the host was added to directly.
    pub direct: Vec<usize>,
    /// All groups of the host including ancestors (computed by [`Data::reconcile`]).
    pub groups: Vec<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct Data {
    pub groups: Vec<Group>,
    group_idx: HashMap<String, usize>,
    pub hosts: Vec<Host>,
    host_idx: HashMap<String, usize>,
    /// The first localhost-like host (`localhost`, `127.0.0.1`, `::1`) of the inventory: a
    /// localhost-like pattern that matches nothing resolves to it.
    pub localhost: Option<usize>,
    pub warnings: Vec<String>,
}

/// A group or a host, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Group(usize),
    Host(usize),
}

pub const ALL: usize = 0;
pub const UNGROUPED: usize = 1;
pub const LOCALHOST_NAMES: [&str; 3] = ["127.0.0.1", "localhost", "::1"];

/// Characters Ansible considers invalid in group names (`^[\d\W]|[^\w]`).
pub fn invalid_group_chars(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        None => false,
        Some(c) if c.is_numeric() || !(c.is_alphanumeric() || c == '_') => true,
        _ => chars.any(|c| !(c.is_alphanumeric() || c == '_')),
    }
}

impl Data {
    pub fn new() -> Self {
        let mut d = Data::default();
        d.add_group("all").expect("valid name");
        d.add_group("ungrouped").expect("valid name");
        d.add_child_group(ALL, UNGROUPED).expect("no cycle");
        d
    }

    pub fn group(&self, name: &str) -> Option<usize> {
        self.group_idx.get(name).copied()
    }

    pub fn host(&self, name: &str) -> Option<usize> {
        self.host_idx.get(name).copied()
    }

    /// Add a group if missing; returns its index. Names with characters Ansible considers
    /// invalid are kept (Ansible's default `TRANSFORM_INVALID_GROUP_CHARS=never`) with a warning.
    pub fn add_group(&mut self, name: &str) -> Result<usize, String> {
        if name.is_empty() {
            return Err("Invalid empty/false group name provided: ".into());
        }
        if let Some(i) = self.group(name) {
            return Ok(i);
        }
        if invalid_group_chars(name) {
            let w = "Invalid characters were found in group names but not replaced, use -vvvv to see details".to_string();
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
        let i = self.groups.len();
        self.groups.push(Group {
            name: name.to_string(),
            hosts: Vec::new(),
            host_set: HashSet::new(),
            vars: Vars::new(),
            children: Vec::new(),
            parents: Vec::new(),
            priority: 1,
            depth: 0,
        });
        self.group_idx.insert(name.to_string(), i);
        Ok(i)
    }

    /// Add a host if missing (the port only counts when the host is new), and put it in
    /// `group` if given.
    pub fn add_host(
        &mut self,
        name: &str,
        group: Option<&str>,
        port: Option<u32>,
    ) -> Result<usize, String> {
        if name.is_empty() {
            return Err("Invalid empty host name provided: ".into());
        }
        let g = match group {
            Some(g) => Some(
                self.group(g)
                    .ok_or_else(|| format!("Could not find group {g} in inventory"))?,
            ),
            None => None,
        };
        let h = match self.host(name) {
            Some(h) => h,
            None => {
                let h = self.hosts.len();
                let mut vars = Vars::new();
                if let Some(p) = port.filter(|p| *p != 0) {
                    vars.insert("ansible_port".into(), Value::Number(p.into()));
                }
                self.hosts.push(Host {
                    name: name.to_string(),
                    vars,
                    direct: Vec::new(),
                    groups: Vec::new(),
                });
                self.host_idx.insert(name.to_string(), h);
                if LOCALHOST_NAMES.contains(&name) {
                    match self.localhost {
                        None => self.localhost = Some(h),
                        Some(first) => {
                            let msg = format!(
                                "A duplicate localhost-like entry was found ({name}). First found localhost was {}",
                                self.hosts[first].name
                            );
                            self.warnings.push(msg);
                        }
                    }
                }
                h
            }
        };
        if let Some(g) = g {
            self.add_host_to_group(g, h);
        }
        Ok(h)
    }

    fn add_host_to_group(&mut self, g: usize, h: usize) {
        if self.groups[g].host_set.insert(h) {
            self.groups[g].hosts.push(h);
            if !self.hosts[h].direct.contains(&g) {
                self.hosts[h].direct.push(g);
            }
        }
    }

    fn remove_host_from_group(&mut self, g: usize, h: usize) {
        if self.groups[g].host_set.remove(&h) {
            self.groups[g].hosts.retain(|x| *x != h);
            self.hosts[h].direct.retain(|x| *x != g);
        }
    }

    /// `InventoryData.add_child`: `child` may be a group or a host.
    pub fn add_child(&mut self, group: &str, child: &str) -> Result<(), String> {
        let g = self
            .group(group)
            .ok_or_else(|| format!("{group} is not a known group"))?;
        if let Some(c) = self.group(child) {
            self.add_child_group(g, c)
        } else if let Some(h) = self.host(child) {
            self.add_host_to_group(g, h);
            Ok(())
        } else {
            Err(format!("{child} is not a known host nor group"))
        }
    }

    pub fn add_child_group(&mut self, parent: usize, child: usize) -> Result<(), String> {
        if parent == child {
            return Err(format!(
                "can't add group '{}' to itself",
                self.groups[parent].name
            ));
        }
        if self.groups[parent].children.contains(&child) {
            return Ok(());
        }
        if self.ancestors(parent).contains(&child) {
            return Err(format!(
                "Adding group '{}' as child to '{}' creates a recursive dependency loop.",
                self.groups[child].name, self.groups[parent].name
            ));
        }
        self.groups[parent].children.push(child);
        if !self.groups[child].parents.contains(&parent) {
            self.groups[child].parents.push(parent);
        }
        Ok(())
    }

    /// All ancestors of a group (not including itself).
    pub fn ancestors(&self, g: usize) -> HashSet<usize> {
        let mut seen = HashSet::new();
        let mut todo: Vec<usize> = self.groups[g].parents.clone();
        while let Some(p) = todo.pop() {
            if seen.insert(p) {
                todo.extend(self.groups[p].parents.iter().copied());
            }
        }
        seen
    }

    /// What `set_variable(name, ...)` sets variables on: the group of that name if there is
    /// one (groups win when both have the name, as in Ansible), else the host.
    pub fn entity(&self, name: &str) -> Option<Entity> {
        self.group(name)
            .map(Entity::Group)
            .or_else(|| self.host(name).map(Entity::Host))
    }

    /// `set_variable` on a group or host by name.
    pub fn set_variable(&mut self, entity: &str, key: &str, value: Value) -> Result<(), String> {
        let e = self
            .entity(entity)
            .ok_or_else(|| format!("Could not identify group or host named {entity}"))?;
        self.set_entity_variable(e, key, value)
    }

    /// [`Data::set_entity_variable`] for each pair, in order.
    pub fn set_entity_variables(
        &mut self,
        e: Entity,
        vars: &[(String, Value)],
    ) -> Result<(), String> {
        let target = match e {
            Entity::Group(g) => &mut self.groups[g].vars,
            Entity::Host(h) => &mut self.hosts[h].vars,
        };
        if target.is_empty() {
            // Room for all of them at once (`Map` has no `reserve`).
            *target = Vars::with_capacity(vars.len());
        }
        for (k, v) in vars {
            self.set_entity_variable(e, k, v.clone())?;
        }
        Ok(())
    }

    /// `set_variable` on an entity already looked up with [`Data::entity`].
    pub fn set_entity_variable(
        &mut self,
        e: Entity,
        key: &str,
        value: Value,
    ) -> Result<(), String> {
        match e {
            Entity::Group(g) if key == "ansible_group_priority" => {
                self.groups[g].priority = python_int(&value).ok_or_else(|| {
                    format!(
                        "invalid ansible_group_priority {value} for group {}: not an integer",
                        self.groups[g].name
                    )
                })?;
            }
            Entity::Group(g) => {
                self.groups[g].vars.insert(key.to_string(), value);
            }
            Entity::Host(h) => {
                self.hosts[h].vars.insert(key.to_string(), value);
            }
        }
        Ok(())
    }

    /// `InventoryData.reconcile_inventory`, plus depth and host-group closure computation.
    pub fn reconcile(&mut self) {
        for g in 0..self.groups.len() {
            if g != ALL && self.groups[g].parents.is_empty() {
                // Cannot fail: `all` has no ancestors other than through explicit edges, and a
                // group whose child is `all` would already have failed earlier.
                let _ = self.add_child_group(ALL, g);
            }
        }
        self.compute_depths();
        let anc: Vec<Vec<usize>> = (0..self.groups.len())
            .map(|g| self.ancestors(g).into_iter().collect())
            .collect();
        for h in 0..self.hosts.len() {
            let closure = self.closure(h, &anc);
            if closure.contains(&UNGROUPED) {
                if closure.iter().any(|g| *g != ALL && *g != UNGROUPED) {
                    self.remove_host_from_group(UNGROUPED, h);
                }
            } else if closure.iter().all(|g| *g == ALL) {
                self.add_host_to_group(UNGROUPED, h);
            }
        }
        for h in 0..self.hosts.len() {
            let c = self.closure(h, &anc);
            self.hosts[h].groups = c;
        }
        let mut clash: Vec<&str> = self
            .hosts
            .iter()
            .filter(|h| self.group_idx.contains_key(&h.name))
            .map(|h| h.name.as_str())
            .collect();
        clash.sort();
        let msgs: Vec<String> = clash
            .iter()
            .map(|n| format!("Found both group and host with same name: {n}"))
            .collect();
        self.warnings.extend(msgs);
    }

    /// Direct groups plus all their ancestors, in a stable order.
    fn closure(&self, h: usize, ancestors: &[Vec<usize>]) -> Vec<usize> {
        let mut v: Vec<usize> = Vec::new();
        for &g in &self.hosts[h].direct {
            v.push(g);
            v.extend_from_slice(&ancestors[g]);
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    fn compute_depths(&mut self) {
        fn depth(d: &Data, g: usize, memo: &mut Vec<Option<usize>>) -> usize {
            if let Some(v) = memo[g] {
                return v;
            }
            let v = d.groups[g]
                .parents
                .iter()
                .map(|&p| depth(d, p, memo) + 1)
                .max()
                .unwrap_or(0);
            memo[g] = Some(v);
            v
        }
        let mut memo = vec![None; self.groups.len()];
        for g in 0..self.groups.len() {
            let v = depth(self, g, &mut memo);
            self.groups[g].depth = v;
        }
    }

    /// Groups in Ansible's variable precedence order: (depth, priority, name).
    pub fn sorted_groups(&self, groups: &[usize]) -> Vec<usize> {
        let mut v: Vec<usize> = groups.iter().copied().filter(|g| *g != ALL).collect();
        v.sort_by(|a, b| {
            let (ga, gb) = (&self.groups[*a], &self.groups[*b]);
            (ga.depth, ga.priority, &ga.name).cmp(&(gb.depth, gb.priority, &gb.name))
        });
        v
    }

    /// `Group.get_hosts()`: hosts of the group and its descendants, in Ansible's order.
    ///
    /// Ansible walks descendants level by level, iterating each level as a Python `set`, whose
    /// order depends on object addresses; for the (rare) levels where that matters we use the
    /// order in which groups were defined.
    pub fn group_hosts(&self, g: usize) -> Vec<usize> {
        let mut ordered: Vec<usize> = vec![g];
        ordered.extend(self.groups[g].children.iter().copied());
        let mut seen: HashSet<usize> = HashSet::new();
        let mut unprocessed: BTreeSet<usize> = self.groups[g].children.iter().copied().collect();
        unprocessed.insert(g);
        while !unprocessed.is_empty() {
            seen.extend(unprocessed.iter().copied());
            let mut next = BTreeSet::new();
            for &u in &unprocessed {
                for &c in &self.groups[u].children {
                    next.insert(c);
                    if !seen.contains(&c) {
                        ordered.push(c);
                    }
                }
            }
            next.retain(|c| !seen.contains(c));
            unprocessed = next;
        }
        let mut out = Vec::new();
        let mut seen_h = HashSet::new();
        for kid in ordered {
            for &h in &self.groups[kid].hosts {
                if seen_h.insert(h) {
                    out.push(h);
                }
            }
        }
        out
    }
}

/// Python `int(value)` for the values `ansible_group_priority` may take.
fn python_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64)),
        Value::Bool(b) => Some(*b as i64),
        Value::String(s) => s.trim().replace('_', "").parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names() {
        assert!(invalid_group_chars("web-servers"));
        assert!(invalid_group_chars("1web"));
        assert!(!invalid_group_chars("web_1"));
    }

    #[test]
    fn cycles_are_refused() {
        let mut d = Data::new();
        d.add_group("a").unwrap();
        d.add_group("b").unwrap();
        d.add_child("a", "b").unwrap();
        assert!(
            d.add_child("b", "a")
                .unwrap_err()
                .contains("recursive dependency loop")
        );
        assert!(d.add_child("a", "a").is_err());
        assert!(d.add_child("a", "nope").is_err());
    }

    #[test]
    fn reconcile_ungrouped_and_depth() {
        let mut d = Data::new();
        d.add_host("lonely", Some("ungrouped"), Some(2222)).unwrap();
        d.add_host("lonely", Some("ungrouped"), Some(3333)).unwrap();
        d.add_host("both", Some("ungrouped"), None).unwrap();
        d.add_group("web").unwrap();
        d.add_group("prod").unwrap();
        d.add_host("both", Some("web"), None).unwrap();
        d.add_host("top", Some("all"), None).unwrap();
        d.add_child("prod", "web").unwrap();
        d.reconcile();
        let names = |v: Vec<usize>| {
            v.into_iter()
                .map(|h| d.hosts[h].name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(d.groups[UNGROUPED].hosts.clone()), ["lonely", "top"]);
        assert_eq!(d.hosts[0].vars["ansible_port"], 2222);
        let web = d.group("web").unwrap();
        let prod = d.group("prod").unwrap();
        assert_eq!(d.groups[web].depth, 2);
        assert_eq!(d.groups[prod].depth, 1);
        assert_eq!(names(d.group_hosts(ALL)), ["top", "lonely", "both"]);
    }

    #[test]
    fn priority_from_set_variable() {
        let mut d = Data::new();
        d.add_group("a").unwrap();
        d.set_variable("a", "ansible_group_priority", Value::String("10".into()))
            .unwrap();
        assert_eq!(d.groups[2].priority, 10);
        assert!(d.groups[2].vars.is_empty());
        assert!(
            d.set_variable("a", "ansible_group_priority", Value::String("x".into()))
                .is_err()
        );
    }
}
