//! The rotation loop on tokio's paused clock, with the in-memory test CA.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use weft_core::identity::SpiffeId;

use weft_test_support::ca::TestCa;

use super::{Issue, IssueError, Issued, Source, describe, key, run};

const CART: &str = "spiffe://td/ns/shop/sa/cart";

/// The test CA as the control plane's: signs the rotation loop's CSRs.
impl Issue for Arc<TestCa> {
    async fn create(&self, csr_pem: String, ttl: Option<Duration>) -> Result<Issued, IssueError> {
        let signed = self
            .sign(&csr_pem, ttl)
            .map_err(|message| IssueError::Unreachable {
                control_plane: "the test CA".into(),
                message,
            })?;
        Ok(Issued {
            chain_pem: signed.chain_pem,
            bundle_pem: signed.bundle_pem,
        })
    }
}

/// A static source holding a certificate from the test CA.
fn source(leaf: weft_test_support::ca::Leaf) -> Arc<Source> {
    let (certified, info) = key::assemble(&leaf.key, leaf.chain, &leaf.bundle).unwrap();
    Source::from_static(certified, leaf.bundle, info)
}

fn start<I: Issue>(issuer: I, ttl: Duration) -> (Arc<Source>, watch::Sender<Option<SpiffeId>>) {
    let source = Source::new();
    let (tx, rx) = watch::channel(Some(SpiffeId::parse(CART).unwrap()));
    tokio::spawn(run(source.clone(), issuer, Some(ttl), rx));
    (source, tx)
}

async fn first(source: &Source) -> String {
    source.ready().wait_for(|r| *r).await.unwrap();
    source.info().unwrap().serial
}

/// Waits for the next certificate whose serial differs from `serial`.
async fn next_after(source: &Source, serial: &str) -> super::CertInfo {
    let mut sub = source.subscribe();
    sub.wait_for(|i| i.as_ref().is_some_and(|i| i.serial != serial))
        .await
        .unwrap()
        .clone()
        .unwrap()
}

fn leaf_spki(key: &rustls::sign::CertifiedKey) -> Vec<u8> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, c) = X509Certificate::from_der(&key.cert[0]).unwrap();
    c.public_key().raw.to_vec()
}

#[tokio::test(start_paused = true)]
async fn renews_at_half_the_remaining_lifetime_with_a_new_key() {
    let ca = Arc::new(TestCa::new("td"));
    let (source, _id) = start(ca.clone(), Duration::from_secs(600));
    let s1 = first(&source).await;
    let t1 = Instant::now();
    let old = source.certified_key().unwrap();
    assert_eq!(source.info().unwrap().spiffe_id, CART);

    let next = next_after(&source, &s1).await;
    let took = t1.elapsed();
    assert!(
        (Duration::from_millis(299_000)..=Duration::from_millis(300_500)).contains(&took),
        "renewed after {took:?}, not at half of 600s"
    );
    assert_eq!(next.spiffe_id, CART);
    let new = source.certified_key().unwrap();
    assert_ne!(
        leaf_spki(&old),
        leaf_spki(&new),
        "a new key for every certificate"
    );
    // Whoever took the old key (an open connection) still has it, unchanged.
    let (_, c) = x509_parser::parse_x509_certificate(&old.cert[0]).unwrap();
    assert_eq!(key::serial_hex(c.raw_serial()), s1);
    assert_eq!(ca.signed(), 2);
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_and_keep_the_held_certificate() {
    let ca = Arc::new(TestCa::new("td"));
    ca.fail_next(3);
    let t0 = Instant::now();
    let (source, _id) = start(ca.clone(), Duration::from_secs(600));
    let mut ready = source.ready();
    // The first failure shows in readiness.
    let mut sub = source.subscribe();
    tokio::task::yield_now().await;
    while source.last_error().is_none() {
        tokio::task::yield_now().await;
    }
    let why = source.not_ready_reason().unwrap();
    assert!(
        why.starts_with("certificate not issued: ") && why.contains("failing as asked"),
        "{why}"
    );
    ready.wait_for(|r| *r).await.unwrap();
    let waited = t0.elapsed();
    // 200ms + 400ms + 800ms, each with up to a quarter of jitter.
    assert!(
        (Duration::from_millis(1_400)..=Duration::from_millis(1_750)).contains(&waited),
        "{waited:?}"
    );
    assert!(source.last_error().is_none(), "success clears the error");
    let s1 = sub.borrow_and_update().clone().unwrap().serial;

    // Renewals that fail keep the current certificate in service.
    // Renewal is due at 299.5..300s; three failures take at least 1.4s more.
    ca.fail_next(3);
    tokio::time::sleep(Duration::from_millis(300_100)).await;
    assert!(source.last_error().is_some(), "the renewal failed");
    assert_eq!(
        source.info().unwrap().serial,
        s1,
        "still the old certificate"
    );
    assert!(*source.ready().borrow());
    assert!(source.not_ready_reason().is_none());
    let next = next_after(&source, &s1).await;
    assert_ne!(next.serial, s1);
}

#[tokio::test(start_paused = true)]
async fn a_new_identity_gets_a_new_certificate_at_once() {
    let ca = Arc::new(TestCa::new("td"));
    let (source, id) = start(ca.clone(), Duration::from_secs(3600));
    let s1 = first(&source).await;
    let t = Instant::now();
    let other = SpiffeId::parse("spiffe://other/ns/shop/sa/cart").unwrap();
    id.send_replace(Some(other.clone()));
    let next = next_after(&source, &s1).await;
    assert_eq!(next.spiffe_id, other.to_string());
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

#[tokio::test(start_paused = true)]
async fn no_identity_no_request() {
    let ca = Arc::new(TestCa::new("td"));
    let source = Source::new();
    let (tx, rx) = watch::channel(None);
    tokio::spawn(run(source.clone(), ca.clone(), None, rx));
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(ca.signed(), 0);
    assert!(source.certified_key().is_none() && source.trust_bundle().is_empty());
    assert!(
        source
            .not_ready_reason()
            .unwrap()
            .contains("waiting for the proxy's identity")
    );
    tx.send_replace(Some(SpiffeId::parse(CART).unwrap()));
    first(&source).await;
}

/// Signs with one CA and returns another's bundle, or returns a certificate for another key.
struct Broken {
    signer: Arc<TestCa>,
    foreign_bundle: bool,
}

impl Issue for Broken {
    async fn create(&self, csr: String, ttl: Option<Duration>) -> Result<Issued, IssueError> {
        let mut issued = self.signer.create(csr, ttl).await?;
        if self.foreign_bundle {
            issued.bundle_pem = vec![key::to_pem(&TestCa::other().root())];
        } else {
            let stolen = source(self.signer.leaf(CART, Duration::from_secs(60)));
            issued.chain_pem = stolen.info().unwrap().chain_pem;
        }
        Ok(issued)
    }
}

#[tokio::test(start_paused = true)]
async fn an_answer_that_does_not_check_out_is_refused() {
    for (foreign_bundle, why) in [
        (true, "does not verify against the CA's own trust bundle"),
        (false, "does not match the key we sent"),
    ] {
        let signer = Arc::new(TestCa::new("td"));
        let (source, _id) = start(
            Broken {
                signer,
                foreign_bundle,
            },
            Duration::from_secs(60),
        );
        while source.last_error().is_none() {
            tokio::task::yield_now().await;
        }
        let err = source.last_error().unwrap();
        assert!(err.contains(why), "{err}");
        assert!(source.certified_key().is_none());
    }
}

#[test]
fn check_refuses_a_certificate_for_another_identity() {
    let ca = TestCa::new("td");
    let s = source(ca.leaf("spiffe://td/ns/shop/sa/admin", Duration::from_secs(60)));
    let info = s.info().unwrap();
    let chain = key::parse_pem(&info.chain_pem).unwrap();
    let err = key::check(&info, &chain, &ca.bundle(), &SpiffeId::parse(CART).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is for \"spiffe://td/ns/shop/sa/admin\", not spiffe://td/ns/shop/sa/cart"),
        "{err}"
    );
    let expired = source(ca.leaf_expired(CART));
    let info = expired.info().unwrap();
    let chain = key::parse_pem(&info.chain_pem).unwrap();
    let err = key::check(&info, &chain, &ca.bundle(), &SpiffeId::parse(CART).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not verify") && err.contains("xpired"),
        "{err}"
    );
}

#[test]
fn describe_names_identity_validity_chain_and_roots() {
    let ca = TestCa::new("td");
    let info = source(ca.leaf(CART, Duration::from_secs(3600)))
        .info()
        .unwrap();
    let text = super::describe::describe_at(&info, info.not_before + 60 + 60);
    for want in [
        "SPIFFE ID:  spiffe://td/ns/shop/sa/cart",
        &format!("Serial:     {}", info.serial),
        "(59m0s left)",
        "[0] workload",
        "issuer:  CN=weft test CA td",
        "Trust bundle (1 root):",
        "  CN=weft test CA td  serial ",
    ] {
        assert!(text.contains(want), "{want:?} missing in\n{text}");
    }
    assert!(super::describe::describe_at(&info, info.not_after + 90).contains("EXPIRED 1m30s ago"));
    assert!(describe(&info).contains("left)"));

    // Certificate by certificate: the workload's first, then the root, each with the
    // SHA-256 of its DER, which the text shows too.
    let all = super::details(&info);
    let roles: Vec<&str> = all.iter().map(|c| c.role.as_str()).collect();
    assert_eq!(roles, ["workload", "root"]);
    assert_eq!(all[0].serial, info.serial);
    assert_eq!(
        (all[0].not_before, all[0].not_after),
        (info.not_before, info.not_after)
    );
    assert_eq!(all[1].subject, "CN=weft test CA td");
    for c in &all {
        assert_eq!(c.sha256.len(), 64, "{c:?}");
        assert!(text.contains(&c.sha256), "{} missing in\n{text}", c.sha256);
    }
}

#[tokio::test(start_paused = true)]
async fn renewals_and_the_time_to_expiry_are_in_the_metrics() {
    let mut registry = crate::metrics::registry();
    let metrics = super::Metrics::register(registry.sub_registry_with_prefix("certs"));
    let before = crate::metrics::encode(&registry);
    assert!(!before.contains("weft_certs_expiry_seconds "), "{before}");
    let ca = Arc::new(TestCa::new("td"));
    ca.fail_next(1);
    let source = Source::with_metrics(metrics);
    let (_id, rx) = watch::channel(Some(SpiffeId::parse(CART).unwrap()));
    tokio::spawn(run(source.clone(), ca, Some(Duration::from_secs(600)), rx));
    first(&source).await;
    let text = crate::metrics::encode(&registry);
    for line in [
        r#"weft_certs_renewals_total{result="failed"} 1"#,
        r#"weft_certs_renewals_total{result="ok"} 1"#,
    ] {
        assert!(text.contains(line), "{line} not in {text}");
    }
    let left: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("weft_certs_expiry_seconds "))
        .expect("an expiry gauge")
        .parse()
        .unwrap();
    assert!((500.0..=660.0).contains(&left), "{left}");
}
