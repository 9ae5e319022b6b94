//! Which pods are endpoints, applied to a snapshot one pod at a time.

use std::collections::{BTreeMap, HashMap, HashSet};

use weft_core::model::{Pod, Snapshot};

/// Brings `working`'s pods in line with the announced and listed ones after the pod `id`
/// changed (`None`: anything may have). Without a pods file only that pod is looked at; with
/// one, the effective list is worked out again (cheap: no resource is rebuilt) and only the
/// pods that differ are set or removed.
pub(super) fn sync(
    working: &mut Snapshot,
    announced: &BTreeMap<String, (u64, Pod)>,
    listed: Option<&[Pod]>,
    id: Option<&str>,
) {
    if let (None, Some(id)) = (listed, id) {
        match announced.get(id) {
            Some((_, pod)) if working.pod(id) != Some(pod) => working.set_pod(pod.clone()),
            Some(_) => {}
            None => working.remove_pod(id),
        }
        return;
    }
    let want: BTreeMap<String, Pod> = endpoints(announced, listed)
        .into_iter()
        .map(|p| (p.id.clone(), p))
        .collect();
    let gone: Vec<String> = (working.current_pods())
        .filter(|p| !want.contains_key(&p.id))
        .map(|p| p.id.clone())
        .collect();
    for id in gone {
        working.remove_pod(&id);
    }
    for (id, pod) in want {
        if working.pod(&id) != Some(&pod) {
            working.set_pod(pod);
        }
    }
}

/// The pods that are endpoints: the listed ones when there is a list (each once, with the
/// listening addresses its proxy announced), else the announced ones.
pub(super) fn endpoints(
    announced: &BTreeMap<String, (u64, Pod)>,
    listed: Option<&[Pod]>,
) -> Vec<Pod> {
    let Some(listed) = listed else {
        return announced.values().map(|(_, p)| p.clone()).collect();
    };
    let by_name: HashMap<(&str, &str), &Pod> = announced
        .values()
        .map(|(_, p)| ((p.namespace.as_str(), p.name.as_str()), p))
        .collect();
    let mut seen: HashSet<&str> = HashSet::new();
    listed
        .iter()
        .filter(|p| seen.insert(p.id.as_str()))
        .map(|p| {
            let mut pod = p.clone();
            let own = announced.get(&p.id).map(|(_, a)| a).or_else(|| {
                by_name
                    .get(&(p.namespace.as_str(), p.name.as_str()))
                    .copied()
            });
            if let Some(a) = own {
                pod.inbound = a.inbound.or(pod.inbound);
                pod.tunnel = a.tunnel.or(pod.tunnel);
            }
            pod
        })
        .collect()
}
