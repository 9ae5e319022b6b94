//! A supervised process's CPU and memory limits ([`crate::cgroup`]): its group made afresh
//! before each start, or a warning saying why the limits cannot be enforced; after an exit,
//! whether the kernel killed it for going over its memory limit.

use weft_core::events::Type;
use weft_core::quantity::Memory;

use super::{Board, Report, Spec};
use crate::cgroup::{Group, Limits};

/// The word that starts how a run ended when the OOM killer ended it (Kubernetes' reason).
pub const OOM_KILLED: &str = "OOMKilled";

/// Whether a run that ended `how` (a process's `lastExit`) was ended by the OOM killer.
pub fn oom_kill(how: &str) -> bool {
    how.starts_with(OOM_KILLED)
}

/// The limits of a process and the group that enforces them (`Err`: why none can).
#[derive(Debug, Clone)]
pub struct Limited {
    pub limits: Limits,
    pub group: Result<Group, String>,
}

impl Limited {
    /// `limits` for process `container` of pod `namespace/pod` of instance `instance`, in
    /// this machine's hierarchy; none when they limit nothing.
    pub fn new(
        instance: &str,
        namespace: &str,
        pod: &str,
        container: &str,
        limits: Option<Limits>,
    ) -> Option<Limited> {
        let limits = limits.filter(Limits::any)?;
        let group = match crate::cgroup::hierarchy() {
            Ok(h) => Ok(h.group(instance, namespace, pod, container)),
            Err(why) => Err(why.clone()),
        };
        Some(Limited { limits, group })
    }
}

/// Makes the process's group for its next start; `None` when it runs unlimited (then the
/// first time, a warning says why, in the report and the events).
pub(super) fn prepare(
    spec: &Spec,
    board: &Board,
    report: &Report,
    warned: &mut bool,
) -> Option<Group> {
    let limited = spec.limits.as_ref()?;
    let made = limited
        .group
        .clone()
        .and_then(|g| match g.create(&limited.limits) {
            Ok(()) => Ok(g),
            Err(why) => {
                g.remove();
                Err(why)
            }
        });
    match made {
        Ok(g) => Some(g),
        Err(why) => {
            if !std::mem::replace(warned, true) {
                let what = format!("its CPU and memory limits are not enforced: {why}");
                report(format!("{}: {what}", spec.label));
                board.note(spec.slot, Type::Warning, "LimitsNotEnforced", &what);
            }
            None
        }
    }
}

/// Why the process's last run ended, when the kernel's OOM killer ended it: `OOMKilled: …`
/// (as Kubernetes says it), with the limit it went over.
pub(super) fn oom_killed(spec: &Spec, group: Option<&Group>) -> Option<String> {
    let group = group?;
    if group.oom_kills() == 0 {
        return None;
    }
    let limit = spec.limits.as_ref()?.limits.memory_limit?;
    Some(format!(
        "{OOM_KILLED}: it went over its memory limit of {}",
        Memory(limit)
    ))
}
