use super::*;

fn config(id: &str) -> (String, String, Vec<u8>) {
    let cfg = ProxyConfig {
        app: "web".into(),
        version: "v1".into(),
        ..ProxyConfig::with_defaults(id, "shop", "web", "spiffe://cluster.local/ns/shop/sa/web")
    };
    (
        id.to_string(),
        "v1".into(),
        serde_json::to_vec(&cfg).unwrap(),
    )
}

#[tokio::test]
async fn a_node_proxy_follows_each_pods_config_until_it_is_removed() {
    let (store, mut asked) = Store::new();
    let web0 = store.serve_pod("web-0.shop");
    let web1 = store.serve_pod("web-1.shop");
    // Each pod served is asked for.
    let mut names = vec![asked.recv().await.unwrap().1, asked.recv().await.unwrap().1];
    names.sort();
    assert_eq!(names, ["web-0.shop", "web-1.shop"]);
    store
        .apply(
            PROXY_TYPE,
            &[config("web-0.shop"), config("web-1.shop")],
            &[],
        )
        .unwrap();
    assert_eq!(web0.borrow().as_ref().unwrap().id, "web-0.shop");
    assert_eq!(web1.borrow().as_ref().unwrap().id, "web-1.shop");
    assert!(
        store.proxy_config().is_none(),
        "no pod's config is the proxy's own"
    );
    // The control plane releases web-1 (it left ambient mode): it has no config any more.
    store
        .apply(PROXY_TYPE, &[], &["web-1.shop".to_string()])
        .unwrap();
    assert!(web1.borrow().is_none());
    assert!(store.pod_removed("web-1.shop"));
    assert!(web0.borrow().is_some());
    assert!(!store.pod_removed("web-0.shop"));
    // Released by the node proxy: the control plane is told, and it is not asked for
    // again after a reconnect.
    store.release_pod("web-0.shop");
    assert_eq!(
        asked.recv().await.unwrap(),
        (PROXY_TYPE.to_string(), "web-0.shop".to_string(), false)
    );
    let resubscribed: Vec<String> = store.subscriptions().into_iter().map(|s| s.1).collect();
    assert!(!resubscribed.contains(&"web-0.shop".to_string()));
    assert!(resubscribed.contains(&"web-1.shop".to_string()));
    // A late config of the released pod is no one's, not the proxy's own.
    store
        .apply(PROXY_TYPE, &[config("web-0.shop")], &[])
        .unwrap();
    assert!(store.proxy_config().is_none());
    // Served again: subscribed anew, and its config reaches it.
    let again = store.serve_pod("web-0.shop");
    assert_eq!(
        asked.recv().await.unwrap(),
        (PROXY_TYPE.to_string(), "web-0.shop".to_string(), true)
    );
    store
        .apply(PROXY_TYPE, &[config("web-0.shop")], &[])
        .unwrap();
    assert_eq!(again.borrow().as_ref().unwrap().id, "web-0.shop");
}

#[tokio::test]
async fn a_bad_pod_config_rejects_the_response_and_changes_nothing() {
    let (store, _asked) = Store::new();
    let web0 = store.serve_pod("web-0.shop");
    let bad = ("web-1.shop".to_string(), "v1".to_string(), b"{".to_vec());
    let err = store.apply(PROXY_TYPE, &[config("web-0.shop"), bad], &[]);
    assert!(err.unwrap_err().to_string().contains("web-1.shop"));
    assert!(web0.borrow().is_none());
}
