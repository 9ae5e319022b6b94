//! Boots a real control plane on port 0 and asks its CA for certificates as a proxy would:
//! valid and refused requests, the metrics and debug API, a restart, a root rotation, and an
//! operator's intermediate.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, UnixTime};
use tonic::Code;
use weft_control::ca::auth::token_sha256;
use weft_proto::ca::{CertificatesClient, CreateCertificateRequest, CreateCertificateResponse};
use weft_test_support::dir::TempDir;
use weft_test_support::wait::eventually;
use x509_parser::prelude::{FromDer, X509Certificate};

mod common;

const MESH: &str = "apiVersion: weft.dev/v1alpha1\nkind: Mesh\nmetadata: {name: mesh}\nspec: {trustDomain: shop.local}\n";
const CART: &str = "spiffe://shop.local/ns/shop/sa/cart";

const T: Duration = Duration::from_secs(10);

/// A config dir, a state dir and a bootstrap file, removed on drop.
struct Env {
    dir: TempDir,
}

impl Env {
    fn new(name: &str) -> Env {
        let env = Env {
            dir: common::config_dir(&format!("ca-{name}"), MESH),
        };
        env.credentials(&[("cart-token", "shop", "cart", "cart-0")]);
        env
    }

    fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    fn bootstrap(&self) -> PathBuf {
        self.dir.join("bootstrap.json")
    }

    /// Writes the bootstrap file (through a rename, as an operator's tool would).
    fn credentials(&self, list: &[(&str, &str, &str, &str)]) {
        let creds: Vec<serde_json::Value> = list
            .iter()
            .map(|(token, ns, sa, pod)| {
                serde_json::json!({"tokenSha256": token_sha256(token), "namespace": ns, "serviceAccount": sa, "pod": pod})
            })
            .collect();
        let file = serde_json::json!({ "credentials": creds }).to_string();
        self.dir.write("bootstrap.json", &file);
    }

    fn ca_config(&self) -> weft_control::ca::Config {
        weft_control::ca::Config {
            bootstrap: Some(self.bootstrap()),
            ..weft_control::ca::Config::new(self.state())
        }
    }

    async fn start(&self, ca: weft_control::ca::Config) -> weft_control::Bound {
        self.try_start(ca).await.expect("control plane starts")
    }

    async fn try_start(
        &self,
        ca: weft_control::ca::Config,
    ) -> Result<weft_control::Bound, weft_control::app::Error> {
        weft_control::build(weft_control::Config {
            ca,
            ..common::config(&self.dir)
        })
        .await
    }
}

fn csr(uri: &str) -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = rcgen::CertificateParams::default();
    p.subject_alt_names = vec![rcgen::SanType::URI(uri.try_into().unwrap())];
    // Asks for more than a workload may have; the CA must not copy any of it.
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    p.serialize_request(&key).unwrap().pem().unwrap()
}

async fn create(
    cp: &weft_control::Bound,
    token: Option<&str>,
    csr_pem: String,
    ttl_seconds: u64,
) -> Result<CreateCertificateResponse, tonic::Status> {
    let mut client = CertificatesClient::connect(format!("http://{}", cp.discovery))
        .await
        .unwrap();
    let mut req = tonic::Request::new(CreateCertificateRequest {
        csr_pem,
        ttl_seconds,
        pod: String::new(),
    });
    if let Some(t) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    client.create(req).await.map(|r| r.into_inner())
}

fn ders(pems: &[String]) -> Vec<CertificateDer<'static>> {
    pems.iter()
        .flat_map(|p| weft_control::ca::cert::parse_pem(p).unwrap())
        .collect()
}

/// Verifies the chain as a peer proxy would (webpki, client auth).
fn verify(
    chain: &[CertificateDer<'static>],
    roots: &[CertificateDer<'static>],
) -> Result<(), String> {
    let mut store = RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider)
        .build()
        .map_err(|e| e.to_string())?;
    verifier
        .verify_client_cert(&chain[0], &chain[1..], UnixTime::now())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn serial(der: &[u8]) -> String {
    weft_control::ca::cert::Summary::of(der).unwrap().serial
}

async fn http_get(cp: &weft_control::Bound, path: &str) -> String {
    common::admin(cp, path).await.body
}

async fn debug_ca(cp: &weft_control::Bound) -> serde_json::Value {
    serde_json::from_str(&http_get(cp, "/debug/ca").await).unwrap()
}

#[tokio::test]
async fn a_valid_token_gets_a_chain_that_verifies_and_carries_exactly_the_san() {
    let env = Env::new("valid");
    let cp = env.start(env.ca_config()).await;
    let resp = create(&cp, Some("cart-token"), csr(CART), 0).await.unwrap();
    let chain = ders(&resp.cert_chain_pem);
    let bundle = ders(&resp.trust_bundle_pem);
    assert_eq!(
        (chain.len(), bundle.len()),
        (1, 1),
        "a root signs: leaf only"
    );
    verify(&chain, &bundle).expect("the chain verifies against the bundle");

    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, [format!("URI({CART})")]);
    let cn: Vec<&str> = leaf
        .subject()
        .iter_common_name()
        .filter_map(|c| c.as_str().ok())
        .collect();
    assert_eq!(
        cn,
        ["cart-0"],
        "the subject names the pod the credential was given to"
    );
    assert!(
        !leaf.is_ca(),
        "the CSR asked for CA:TRUE; the CA must not copy it"
    );
    let ku = leaf.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && !ku.key_cert_sign());
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);
    assert_eq!(leaf.raw_serial().len(), 16, "128-bit serial");
    let now = weft_control::ca::cert::now();
    let (nb, na) = (
        leaf.validity().not_before.timestamp(),
        leaf.validity().not_after.timestamp(),
    );
    assert!(
        (now - 62..=now - 58).contains(&nb),
        "backdated 60s: {nb} vs {now}"
    );
    assert!(
        (now + 86_398..=now + 86_402).contains(&na),
        "24h default: {na} vs {now}"
    );
    let root = weft_control::ca::cert::Summary::of(&bundle[0]).unwrap();
    assert_eq!(root.subject, "O=weft, CN=weft root CA shop.local");
    assert_eq!(leaf.issuer().to_string(), root.subject);

    // A requested TTL is honoured below the default and capped above it.
    let short = create(&cp, Some("cart-token"), csr(CART), 600)
        .await
        .unwrap();
    let long = create(&cp, Some("cart-token"), csr(CART), 30 * 86_400)
        .await
        .unwrap();
    let end = |r: &CreateCertificateResponse| {
        weft_control::ca::cert::Summary::of(&ders(&r.cert_chain_pem)[0])
            .unwrap()
            .not_after
            - now
    };
    assert!((598..=602).contains(&end(&short)), "{}", end(&short));
    assert!((86_398..=86_402).contains(&end(&long)), "{}", end(&long));

    assert_eq!(
        common::metric(&cp, "weft_ca_certificates_issued_total").await,
        3
    );
    let dbg = debug_ca(&cp).await;
    let issued = dbg["issued"][CART].as_array().unwrap();
    assert_eq!(issued.len(), 3);
    assert_eq!(issued[2]["serial"], serial(&chain[0]));
    assert_eq!(issued[2]["pod"], "cart-0");
    assert_eq!(issued[2]["notAfter"]["unix"], na);
    assert_eq!(dbg["roots"][0]["serial"], root.serial);
    assert_eq!(dbg["roots"][0]["notAfter"]["unix"], root.not_after);
    assert_eq!(dbg["signing"]["kind"], "root");
    cp.shutdown().await;
}

#[tokio::test]
async fn refusals_get_the_right_status_are_counted_and_the_ca_keeps_working() {
    let env = Env::new("refusals");
    let cp = env.start(env.ca_config()).await;
    let cases = [
        (
            Some("nope"),
            csr(CART),
            Code::Unauthenticated,
            "unknown bootstrap token",
            "unknown_credential",
        ),
        (
            None,
            csr(CART),
            Code::Unauthenticated,
            "authorization: Bearer",
            "no_credential",
        ),
        (
            Some("cart-token"),
            csr("spiffe://shop.local/ns/shop/sa/admin"),
            Code::PermissionDenied,
            "asks for \"spiffe://shop.local/ns/shop/sa/admin\", but this credential allows only spiffe://shop.local/ns/shop/sa/cart",
            "wrong_identity",
        ),
        (
            Some("cart-token"),
            csr("spiffe://other.domain/ns/shop/sa/cart"),
            Code::PermissionDenied,
            "allows only spiffe://shop.local/ns/shop/sa/cart",
            "wrong_identity",
        ),
        (
            Some("cart-token"),
            "not a csr".to_string(),
            Code::InvalidArgument,
            "bad CSR",
            "bad_csr",
        ),
    ];
    for (token, pem, code, text, _) in &cases {
        let err = create(&cp, *token, pem.clone(), 0).await.unwrap_err();
        assert_eq!(err.code(), *code, "{err:?}");
        assert!(
            err.message().contains(text),
            "{:?} should contain {text:?}",
            err.message()
        );
    }
    for (reason, n) in [
        ("unknown_credential", 1),
        ("no_credential", 1),
        ("wrong_identity", 2),
        ("bad_csr", 1),
        ("not_configured", 0),
    ] {
        let sample = format!("weft_ca_requests_refused_total{{reason=\"{reason}\"}}");
        assert_eq!(common::metric(&cp, &sample).await, n, "{sample}");
    }
    assert_eq!(
        common::metric(&cp, "weft_ca_certificates_issued_total").await,
        0
    );
    let resp = create(&cp, Some("cart-token"), csr(CART), 0).await.unwrap();
    verify(&ders(&resp.cert_chain_pem), &ders(&resp.trust_bundle_pem)).unwrap();
    assert_eq!(
        common::metric(&cp, "weft_ca_certificates_issued_total").await,
        1
    );
    cp.shutdown().await;
}

#[tokio::test]
async fn without_bootstrap_credentials_every_request_is_refused_with_the_reason() {
    let env = Env::new("nobootstrap");
    let cp = env.start(weft_control::ca::Config::new(env.state())).await;
    for token in [Some("cart-token"), None] {
        let err = create(&cp, token, csr(CART), 0).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert!(
            err.message().contains("--bootstrap FILE"),
            "{}",
            err.message()
        );
    }
    let sample = "weft_ca_requests_refused_total{reason=\"not_configured\"}";
    assert_eq!(common::metric(&cp, sample).await, 2);
    cp.shutdown().await;
}

#[tokio::test]
async fn the_bootstrap_file_is_reread_when_it_changes() {
    let env = Env::new("reread");
    let cp = env.start(env.ca_config()).await;
    let web = "spiffe://shop.local/ns/shop/sa/web";
    let err = create(&cp, Some("web-token"), csr(web), 0)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    env.credentials(&[("web-token", "shop", "web", "web-0")]);
    eventually("the new credential to be picked up", T, async || {
        let r = create(&cp, Some("web-token"), csr(web), 0).await;
        if let Err(e) = &r {
            assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
        }
        r
    })
    .await;
    // The old token is gone with the old file.
    let err = create(&cp, Some("cart-token"), csr(CART), 0)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    cp.shutdown().await;
}

#[tokio::test]
async fn the_root_persists_across_a_restart_with_the_same_state_dir() {
    let env = Env::new("restart");
    let cp = env.start(env.ca_config()).await;
    let before = create(&cp, Some("cart-token"), csr(CART), 0).await.unwrap();
    cp.shutdown().await;
    let key = env.state().join("ca/root-key.pem");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "{}", key.display());
    assert!(env.state().join("ca/root-cert.pem").exists());

    let cp = env.start(env.ca_config()).await;
    let after = create(&cp, Some("cart-token"), csr(CART), 0).await.unwrap();
    assert_eq!(before.trust_bundle_pem, after.trust_bundle_pem, "same root");
    // A certificate from after the restart verifies with the bundle from before.
    verify(
        &ders(&after.cert_chain_pem),
        &ders(&before.trust_bundle_pem),
    )
    .unwrap();
    cp.shutdown().await;
}

#[tokio::test]
async fn rotate_root_keeps_the_old_root_trusted_and_signs_with_the_new() {
    let env = Env::new("rotate");
    let cp = env.start(env.ca_config()).await;
    let old = create(&cp, Some("cart-token"), csr(CART), 0).await.unwrap();
    let old_root = ders(&old.trust_bundle_pem);
    cp.shutdown().await;

    let cp = env
        .start(weft_control::ca::Config {
            rotate_root: true,
            ..env.ca_config()
        })
        .await;
    let new = create(&cp, Some("cart-token"), csr(CART), 0).await.unwrap();
    let bundle = ders(&new.trust_bundle_pem);
    assert_eq!(bundle.len(), 2, "old and new root");
    assert!(
        bundle.contains(&old_root[0]),
        "the old root is still trusted"
    );
    let new_root: Vec<_> = bundle
        .iter()
        .filter(|r| **r != old_root[0])
        .cloned()
        .collect();
    let leaf = ders(&new.cert_chain_pem);
    verify(&leaf, &new_root).expect("signed by the new root");
    assert!(verify(&leaf, &old_root).is_err(), "not by the old one");
    // Proxies still holding old certificates verify against the new bundle.
    verify(&ders(&old.cert_chain_pem), &bundle).unwrap();

    let kept = env
        .state()
        .join(format!("ca/bundle/root-{}.pem", serial(&old_root[0])));
    assert!(kept.exists(), "{}", kept.display());
    let dbg = debug_ca(&cp).await;
    assert_eq!(dbg["roots"].as_array().unwrap().len(), 2);
    assert_eq!(dbg["signing"]["serial"], serial(&new_root[0]));

    // Removing the old root's file ends the overlap, without a restart.
    std::fs::remove_file(&kept).unwrap();
    let after = create(&cp, Some("cart-token"), csr(CART), 0).await.unwrap();
    assert_eq!(ders(&after.trust_bundle_pem), new_root);
    cp.shutdown().await;

    // The flag is one-shot in effect: a later start without it keeps the new root.
    let cp = env.start(env.ca_config()).await;
    let again = create(&cp, Some("cart-token"), csr(CART), 0).await.unwrap();
    assert_eq!(ders(&again.trust_bundle_pem), new_root);
    cp.shutdown().await;
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// An operator's root and an intermediate it signed.
fn operator_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let root_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut rp = rcgen::CertificateParams::default();
    rp.distinguished_name = rcgen::DistinguishedName::new();
    rp.distinguished_name
        .push(rcgen::DnType::CommonName, "corp root");
    rp.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    rp.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let root = rp.self_signed(&root_key).unwrap();
    let int_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ip = rcgen::CertificateParams::default();
    ip.distinguished_name = rcgen::DistinguishedName::new();
    ip.distinguished_name
        .push(rcgen::DnType::CommonName, "corp mesh intermediate");
    ip.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    ip.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let issuer = rcgen::Issuer::new(rp, root_key);
    let int = ip.signed_by(&int_key, &issuer).unwrap();
    (
        write(dir, "int-cert.pem", &int.pem()),
        write(dir, "int-key.pem", &int_key.serialize_pem()),
        write(dir, "roots.pem", &root.pem()),
    )
}

#[tokio::test]
async fn an_operator_intermediate_signs_and_is_served_in_the_chain() {
    let env = Env::new("intermediate");
    let (cert, key, roots) = operator_pki(env.dir.path());
    let cfg = weft_control::ca::Config {
        ca_cert: Some(cert.clone()),
        ca_key: Some(key.clone()),
        ..env.ca_config()
    };
    let err = env.try_start(cfg.clone()).await.unwrap_err().to_string();
    assert!(
        err.contains("is an intermediate") && err.contains("--ca-bundle"),
        "{err}"
    );

    let cp = env
        .start(weft_control::ca::Config {
            ca_bundle: Some(roots),
            ..cfg
        })
        .await;
    let resp = create(&cp, Some("cart-token"), csr(CART), 0).await.unwrap();
    let chain = ders(&resp.cert_chain_pem);
    let bundle = ders(&resp.trust_bundle_pem);
    assert_eq!(
        (chain.len(), bundle.len()),
        (2, 1),
        "leaf + intermediate; the corp root"
    );
    verify(&chain, &bundle).unwrap();
    assert!(
        verify(&chain[..1], &bundle).is_err(),
        "the intermediate is needed"
    );
    assert!(
        !env.state().join("ca/root-key.pem").exists(),
        "no root generated"
    );
    cp.shutdown().await;

    // A key that is not the certificate's is refused at start.
    let other = env.dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let (_, other_key, _) = operator_pki(&other);
    let err = env
        .try_start(weft_control::ca::Config {
            ca_cert: Some(cert),
            ca_key: Some(other_key),
            ..env.ca_config()
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not hold the key of the certificate"),
        "{err}"
    );
}

#[tokio::test]
async fn replicas_starting_together_share_one_root() {
    let env = Env::new("replicas");
    let (a, b) = tokio::join!(env.start(env.ca_config()), env.start(env.ca_config()));
    let ra = create(&a, Some("cart-token"), csr(CART), 0).await.unwrap();
    let rb = create(&b, Some("cart-token"), csr(CART), 0).await.unwrap();
    assert_eq!(ra.trust_bundle_pem, rb.trust_bundle_pem);
    verify(&ders(&ra.cert_chain_pem), &ders(&rb.trust_bundle_pem)).unwrap();
    a.shutdown().await;
    b.shutdown().await;
}
