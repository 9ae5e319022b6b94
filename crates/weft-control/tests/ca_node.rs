//! A node proxy (ambient mode) asks the CA for the certificates of the pods on its node: it
//! gets exactly those pods' own certificates, and nothing for a pod on another node, for a pod
//! on no node, or for another identity; a sidecar's credential cannot ask for another pod.

use tonic::Code;
use weft_control::ca::auth::token_sha256;
use weft_proto::ca::{CertificatesClient, CreateCertificateRequest, CreateCertificateResponse};
use weft_test_support::dir::TempDir;
use x509_parser::prelude::{FromDer, X509Certificate};

mod common;

const MESH: &str = "apiVersion: weft.dev/v1alpha1\nkind: Mesh\nmetadata: {name: mesh}\nspec: {trustDomain: shop.local}\n";
const CART: &str = "spiffe://shop.local/ns/shop/sa/cart";
const WEB: &str = "spiffe://shop.local/ns/shop/sa/web";

/// The node proxy of node-a; cart-0 on node-a, web-0 on node-b, db-0 on no node.
fn bootstrap(dir: &TempDir) {
    let entry = |token: &str, ns: &str, sa: &str, pod: &str, role: &str, node: &str| {
        serde_json::json!({"tokenSha256": token_sha256(token), "namespace": ns,
            "serviceAccount": sa, "pod": pod, "role": role, "node": node})
    };
    let creds = [
        entry(
            "node-a-token",
            "weft-system",
            "weft-node",
            "node-a",
            "node",
            "",
        ),
        entry("cart-token", "shop", "cart", "cart-0", "sidecar", "node-a"),
        entry("web-token", "shop", "web", "web-0", "", "node-b"),
        entry("db-token", "shop", "db", "db-0", "", ""),
    ];
    let file = serde_json::json!({ "credentials": creds }).to_string();
    dir.write("bootstrap.json", &file);
}

async fn start(dir: &TempDir) -> weft_control::Bound {
    bootstrap(dir);
    let ca = weft_control::ca::Config {
        bootstrap: Some(dir.join("bootstrap.json")),
        ..weft_control::ca::Config::new(dir.join("state"))
    };
    common::start(weft_control::Config {
        ca,
        ..common::config(dir)
    })
    .await
}

fn csr(uri: &str) -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = rcgen::CertificateParams::default();
    p.subject_alt_names = vec![rcgen::SanType::URI(uri.try_into().unwrap())];
    p.serialize_request(&key).unwrap().pem().unwrap()
}

async fn create(
    cp: &weft_control::Bound,
    token: &str,
    uri: &str,
    pod: &str,
) -> Result<CreateCertificateResponse, tonic::Status> {
    let mut client = CertificatesClient::connect(format!("http://{}", cp.discovery))
        .await
        .unwrap();
    let mut req = tonic::Request::new(CreateCertificateRequest {
        csr_pem: csr(uri),
        ttl_seconds: 0,
        pod: pod.into(),
    });
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    client.create(req).await.map(|r| r.into_inner())
}

#[tokio::test]
async fn a_node_proxy_gets_the_certificates_of_its_nodes_pods_and_no_other() {
    let dir = common::config_dir("ca-node", MESH);
    let cp = start(&dir).await;

    // cart-0 runs on node-a: its own certificate, its identity, its pod in the subject.
    let resp = create(&cp, "node-a-token", CART, "shop/cart-0")
        .await
        .unwrap();
    let der = rustls_pki_types::pem::PemObject::from_pem_slice(resp.cert_chain_pem[0].as_bytes())
        .map(|d: rustls_pki_types::CertificateDer<'static>| d.to_vec())
        .unwrap();
    let (_, leaf) = X509Certificate::from_der(&der).unwrap();
    assert!(
        leaf.subject().to_string().contains("cart-0"),
        "{}",
        leaf.subject()
    );

    let refused = async |token: &str, uri: &str, pod: &str| {
        let err = create(&cp, token, uri, pod).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        err.message().to_string()
    };
    // web-0 runs on node-b, db-0 on no node.
    let m = refused("node-a-token", WEB, "shop/web-0").await;
    assert!(m.contains("node \"node-b\""), "{m}");
    let m = refused(
        "node-a-token",
        "spiffe://shop.local/ns/shop/sa/db",
        "shop/db-0",
    )
    .await;
    assert!(m.contains("no node"), "{m}");
    // An unregistered pod, and a malformed name.
    let m = refused("node-a-token", CART, "shop/cart-9").await;
    assert!(m.contains("no registration"), "{m}");
    let m = refused("node-a-token", CART, "cart-0").await;
    assert!(m.contains("NAMESPACE/POD"), "{m}");
    // The right pod, another identity in the CSR.
    let m = refused("node-a-token", WEB, "shop/cart-0").await;
    assert!(m.contains("allows only"), "{m}");
    // A sidecar's credential cannot ask for another pod, even one on its own node.
    let m = refused("cart-token", WEB, "shop/web-0").await;
    assert!(m.contains("only a node proxy"), "{m}");

    let metrics = common::admin(&cp, "/metrics").await.body;
    let wrong_node = metrics
        .lines()
        .find(|l| l.starts_with("weft_ca_requests_refused_total{reason=\"wrong_node\"}"))
        .unwrap_or_else(|| panic!("no wrong_node series in\n{metrics}"));
    assert!(wrong_node.ends_with(" 5"), "{wrong_node}");
}
