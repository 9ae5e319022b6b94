//! Which pods are endpoints, kept with indexes so that one proxy announcing or leaving costs
//! work for that pod only, even with a pods file of thousands: with a list in force, exactly
//! the listed pods (each once), with the listening addresses their own proxy announced (found
//! by id, else by namespace and name); without one, the announced pods.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use weft_core::model::{Pod, Snapshot};

type Name = (String, String);

/// The announced and listed pods.
#[derive(Debug, Default)]
pub(super) struct Pods {
    /// Pod id → (connection that announced it, pod).
    announced: BTreeMap<String, (u64, Pod)>,
    /// (namespace, name) → ids of announced pods with it.
    announced_by_name: HashMap<Name, BTreeSet<String>>,
    /// The pods file's list; `None` until one was read (or without a pods file).
    listed: Option<Listed>,
}

#[derive(Debug, Default)]
struct Listed {
    /// Each id once (the first).
    by_id: BTreeMap<String, Pod>,
    by_name: HashMap<Name, BTreeSet<String>>,
}

fn name(p: &Pod) -> Name {
    (p.namespace.clone(), p.name.clone())
}

impl Pods {
    /// Whether the pod `id` was announced over `connection`.
    pub(super) fn announced_by(&self, id: &str, connection: u64) -> bool {
        self.announced
            .get(id)
            .is_some_and(|(c, _)| *c == connection)
    }

    /// Records the pod a proxy announced and applies what it changes to `working`.
    pub(super) fn announce(&mut self, working: &mut Snapshot, connection: u64, pod: Pod) {
        let id = pod.id.clone();
        let old = self.withdraw_quietly(&id);
        self.announced_by_name
            .entry(name(&pod))
            .or_default()
            .insert(id.clone());
        let new_name = name(&pod);
        self.announced.insert(id.clone(), (connection, pod));
        self.apply(working, &id, [old, Some(new_name)].into_iter().flatten());
    }

    /// Forgets the announced pod `id` and applies what that changes to `working`.
    pub(super) fn withdraw(&mut self, working: &mut Snapshot, id: &str) {
        let old = self.withdraw_quietly(id);
        self.apply(working, id, old);
    }

    fn withdraw_quietly(&mut self, id: &str) -> Option<Name> {
        let (_, pod) = self.announced.remove(id)?;
        let n = name(&pod);
        if let Some(ids) = self.announced_by_name.get_mut(&n) {
            ids.remove(id);
            if ids.is_empty() {
                self.announced_by_name.remove(&n);
            }
        }
        Some(n)
    }

    /// Puts a pods file's list in force: every pod is looked at once.
    pub(super) fn set_list(&mut self, working: &mut Snapshot, pods: Vec<Pod>) {
        let mut listed = Listed::default();
        for p in pods {
            if !listed.by_id.contains_key(&p.id) {
                listed
                    .by_name
                    .entry(name(&p))
                    .or_default()
                    .insert(p.id.clone());
                listed.by_id.insert(p.id.clone(), p);
            }
        }
        self.listed = Some(listed);
        let want = self.endpoints();
        let gone: Vec<String> = (working.current_pods())
            .filter(|p| !want.contains_key(&p.id))
            .map(|p| p.id.clone())
            .collect();
        for id in gone {
            working.remove_pod(&id);
        }
        for (_, pod) in want {
            set(working, pod);
        }
    }

    /// Applies to `working` what the announcement of `id` (with names `names`, old and new)
    /// changed.
    fn apply(&self, working: &mut Snapshot, id: &str, names: impl IntoIterator<Item = Name>) {
        let Some(listed) = &self.listed else {
            match self.announced.get(id) {
                Some((_, pod)) => set(working, pod.clone()),
                None => working.remove_pod(id),
            }
            return;
        };
        let mut affected: BTreeSet<&String> = listed
            .by_id
            .get_key_value(id)
            .map(|(k, _)| k)
            .into_iter()
            .collect();
        for n in names {
            affected.extend(listed.by_name.get(&n).into_iter().flatten());
        }
        for id in affected {
            set(working, self.effective(&listed.by_id[id]));
        }
    }

    /// A listed pod with the addresses its own proxy announced.
    fn effective(&self, listed: &Pod) -> Pod {
        let own = self.announced.get(&listed.id).map(|(_, a)| a).or_else(|| {
            let ids = self.announced_by_name.get(&name(listed))?;
            ids.iter().next_back().map(|id| &self.announced[id].1)
        });
        let mut pod = listed.clone();
        if let Some(a) = own {
            pod.inbound = a.inbound.or(pod.inbound);
            pod.tunnel = a.tunnel.or(pod.tunnel);
        }
        pod
    }

    /// Every pod that is an endpoint, by id.
    pub(super) fn endpoints(&self) -> BTreeMap<String, Pod> {
        match &self.listed {
            None => (self.announced.iter())
                .map(|(id, (_, p))| (id.clone(), p.clone()))
                .collect(),
            Some(listed) => (listed.by_id.iter())
                .map(|(id, p)| (id.clone(), self.effective(p)))
                .collect(),
        }
    }
}

/// Sets `pod` in `working` unless it is there as it is.
fn set(working: &mut Snapshot, pod: Pod) {
    if working.pod(&pod.id) != Some(&pod) {
        working.set_pod(pod);
    }
}
