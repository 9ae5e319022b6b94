//! `weft analyze`: cross-resource checks with stable codes (`WEFT` + 4 digits). Each rule has a
//! severity, a one-line message, the resource and its file:line, and a concrete fix; its long
//! explanation carries a bad and a good example that the tests run through the analyzer.
//!
//! Codes by family: 01xx references, 02xx conflicts, 03xx best practices, 04xx annotations and
//! labels, 05xx routes, 06xx workloads and policies, 07xx control-plane revisions, 08xx
//! configuration written for another mesh (Istio).

mod ambient;
mod annotations;
mod app_resources;
mod conflicts;
mod faults;
mod foreign;
mod index;
mod practices;
mod principals;
mod proxyless;
mod ratelimit;
mod refs;
mod revisions;
mod routes;
mod workloads;

use std::fmt;

use serde::Serialize;

use crate::annotations::ANALYZE_IGNORE;
use crate::load::{Config, Foreign, Loaded, Location};

pub use index::Index;
pub use revisions::MeshRevisions;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A string that names no [`Severity`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a severity (info, warning, error)")]
pub struct SeverityError(pub String);

impl std::str::FromStr for Severity {
    type Err = SeverityError;
    fn from_str(s: &str) -> Result<Self, SeverityError> {
        match s {
            "info" => Ok(Severity::Info),
            "warning" => Ok(Severity::Warning),
            "error" => Ok(Severity::Error),
            _ => Err(SeverityError(s.to_string())),
        }
    }
}

/// One analyzer rule: what it finds and why it matters.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub code: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    /// Why it matters and what to do, a paragraph or two.
    pub explain: &'static str,
    /// Resources that trigger the rule, on top of [`EXAMPLE_BASE`].
    pub bad: &'static str,
    /// The same, fixed.
    pub good: &'static str,
}

/// The resources every example builds on: a Workload `web` and a Service `web` in front of it.
pub const EXAMPLE_BASE: &str = r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web, labels: {app: web}}
spec:
  command: [python3, -m, http.server, "8080"]
  ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"#;

/// Every rule, in code order.
pub fn rules() -> impl Iterator<Item = &'static Rule> {
    [
        refs::RULES,
        conflicts::RULES,
        practices::RULES,
        annotations::RULES,
        routes::RULES,
        faults::RULES,
        workloads::RULES,
        proxyless::RULES,
        ambient::RULES,
        principals::RULES,
        ratelimit::RULES,
        app_resources::RULES,
        revisions::RULES,
        foreign::RULES,
    ]
    .into_iter()
    .flatten()
}

pub fn rule(code: &str) -> Option<&'static Rule> {
    rules().find(|r| r.code.eq_ignore_ascii_case(code))
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    /// `Kind/namespace/name`.
    pub resource: String,
    pub location: Location,
    /// What to change.
    pub fix: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} {}: {} [{}]\n  fix: {}",
            self.location, self.severity, self.code, self.message, self.resource, self.fix
        )
    }
}

/// Collects findings for the rules.
#[derive(Debug, Default)]
pub struct Report {
    findings: Vec<Finding>,
    suppressed: usize,
}

impl Report {
    /// Reports `code` against `at`, located at field `path` of it.
    pub fn add(
        &mut self,
        code: &'static str,
        at: &Loaded,
        path: &str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        let Some(rule) = rule(code) else {
            debug_assert!(false, "unregistered rule {code}");
            return;
        };
        let ignored = at
            .resource
            .metadata()
            .annotation(ANALYZE_IGNORE)
            .is_some_and(|list| list.split(',').any(|c| c.trim().eq_ignore_ascii_case(code)));
        if ignored {
            self.suppressed += 1;
            return;
        }
        self.findings.push(Finding {
            code: rule.code,
            severity: rule.severity,
            message: message.into(),
            resource: at.resource.id(),
            location: at.locate(path),
            fix: fix.into(),
        });
    }
}

impl Report {
    /// Reports `code` against a document weft does not read (see [`Foreign`]), at its start.
    pub fn add_foreign(
        &mut self,
        code: &'static str,
        at: &Foreign,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        let Some(rule) = rule(code) else {
            debug_assert!(false, "unregistered rule {code}");
            return;
        };
        let ignored = at
            .annotations
            .get(ANALYZE_IGNORE)
            .is_some_and(|list| list.split(',').any(|c| c.trim().eq_ignore_ascii_case(code)));
        if ignored {
            self.suppressed += 1;
            return;
        }
        self.findings.push(Finding {
            code: rule.code,
            severity: rule.severity,
            message: message.into(),
            resource: at.id(),
            location: at.origin.clone(),
            fix: fix.into(),
        });
    }
}

/// What the analyzer found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Analysis {
    pub findings: Vec<Finding>,
    /// Findings hidden by `weft.dev/analyze-ignore`.
    pub suppressed: usize,
}

impl Analysis {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }
}

/// Runs every rule over `config` except those that need the running mesh. Findings are sorted
/// by file, line and code.
pub fn analyze(config: &Config) -> Analysis {
    run(config, None)
}

/// [`analyze`], and the rules that check revision labels against the running mesh's revisions
/// and tags (WEFT0704–WEFT0706).
pub fn analyze_with(config: &Config, mesh: &MeshRevisions) -> Analysis {
    run(config, Some(mesh))
}

fn run(config: &Config, mesh: Option<&MeshRevisions>) -> Analysis {
    let index = Index::new(config);
    let mut report = Report::default();
    refs::check(&index, &mut report);
    conflicts::check(&index, &mut report);
    practices::check(&index, &mut report);
    annotations::check(&index, &mut report);
    routes::check(&index, &mut report);
    faults::check(&index, &mut report);
    workloads::check(&index, &mut report);
    proxyless::check(&index, &mut report);
    ambient::check(&index, &mut report);
    principals::check(&index, &mut report);
    ratelimit::check(&index, &mut report);
    app_resources::check(&index, &mut report);
    revisions::check(&index, &mut report);
    foreign::check(&index, &mut report);
    if let Some(mesh) = mesh {
        revisions::check_running(&index, mesh, &mut report);
    }
    let mut findings = report.findings;
    findings.sort_by(|a, b| (&a.location, a.code).cmp(&(&b.location, b.code)));
    findings.dedup();
    Analysis {
        findings,
        suppressed: report.suppressed,
    }
}

/// The long explanation of a rule with its examples, as `weft analyze --explain` prints it.
pub fn explain(rule: &Rule) -> String {
    let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
    let mesh = match revisions::NEEDS_MESH.contains(&rule.code) {
        true => format!(
            " The running mesh has {}.",
            revisions::example_mesh().describe()
        ),
        false => String::new(),
    };
    format!(
        "{code} ({sev}): {title}\n\n{explain}\n\nExamples build on a Workload `web` (label app: web, port 8080) and a Service `web` (port 80 -> 8080).{mesh}\n\nBad:\n{bad}\nGood:\n{good}",
        code = rule.code,
        sev = rule.severity,
        title = rule.title,
        explain = rule.explain.trim(),
        bad = indent(rule.bad.trim_end()),
        good = indent(rule.good.trim_end()),
    )
}

#[cfg(test)]
mod tests;

/// Loads `dir` and keeps it only if it loads and analyzes without errors: what the control
/// plane applies and what `weft up` starts. `Err` holds one message per problem, each with
/// file:line.
pub fn load_checked(dir: &std::path::Path) -> Result<Config, Vec<String>> {
    load_analyzed(dir).map(|(config, _)| config)
}

/// [`load_checked`], with the analyzer's findings on what it kept (warnings and notes), so
/// whoever applies it need not analyze it again.
pub fn load_analyzed(dir: &std::path::Path) -> Result<(Config, Vec<Finding>), Vec<String>> {
    let out = crate::load_paths(&[dir]);
    let mut problems: Vec<String> = out.errors.iter().map(ToString::to_string).collect();
    let findings = analyze(&out.config).findings;
    problems.extend(
        findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(ToString::to_string),
    );
    if problems.is_empty() {
        Ok((out.config, findings))
    } else {
        Err(problems)
    }
}
