//! A route rule's `Fault` filter (`extensionRef` to `weft.dev/Fault`), taken out of its filters
//! and resolved into the rule, so a proxy applies it without looking anything up. A name that
//! resolves to no Fault is not skipped (Gateway API: requests a filter cannot process get an
//! error): the rule answers 500, and the analyzer reports the reference.

use crate::load::Config;
use crate::resources::Resource;
use crate::resources::fault::{self, FaultAbort, FaultSpec};
use crate::resources::http_route::{HttpFilterType, HttpRouteFilter};

/// Removes the Fault filters of `filters` and returns what they inject (the last one wins
/// when a rule names several).
pub(super) fn take(
    config: &Config,
    ns: &str,
    filters: &mut Vec<HttpRouteFilter>,
) -> Option<FaultSpec> {
    let mut found = None;
    filters.retain(|f| {
        let Some(r) = f
            .extension_ref
            .as_ref()
            .filter(|_| f.filter_type == HttpFilterType::ExtensionRef)
        else {
            return true;
        };
        if r.group != fault::GROUP || r.kind != fault::KIND {
            return true;
        }
        found = Some(lookup(config, ns, &r.name).unwrap_or_else(unresolved));
        false
    });
    found
}

fn lookup(config: &Config, ns: &str, name: &str) -> Option<FaultSpec> {
    config.resources.iter().find_map(|l| match &l.resource {
        Resource::Fault(f) if f.metadata.namespace() == ns && f.metadata.name == name => {
            let abort_ok = f.spec.abort.as_ref().is_none_or(|a| a.problem().is_none());
            Some(if abort_ok {
                f.spec.clone()
            } else {
                unresolved()
            })
        }
        _ => None,
    })
}

fn unresolved() -> FaultSpec {
    FaultSpec {
        delay: None,
        abort: Some(FaultAbort {
            http_status: Some(500),
            grpc_status: None,
            percentage: 100.0,
        }),
    }
}
