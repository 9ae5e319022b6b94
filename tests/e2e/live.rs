//! Workload changes applied while `weft up` runs the demo shop, under requests through its
//! ingress every 50 ms that must all succeed (the page's calls to the catalog and the cart
//! too): more replicas start as new pods that become endpoints, fewer stop the highest
//! ordinals first and leave the endpoints; a new env replaces the frontend pods one at a time;
//! what the running mesh cannot change is refused by name while the rest applies. Needs root
//! (CI runs it with `--include-ignored`).

use std::collections::BTreeSet;
use std::time::Duration;

use weft_e2e::{ConfigDir, Mesh, SteadyLoad, http_get, serial, shop, text};

const NAME: &str = "livechg";
const WAIT: Duration = Duration::from_secs(60);

/// What is wrong with a `/api` page: a dependency it could not reach.
fn api_ok(body: &str) -> Option<String> {
    let Ok(page) = serde_json::from_str::<serde_json::Value>(body) else {
        return Some(format!("not JSON: {body}"));
    };
    ["catalog", "cart"]
        .into_iter()
        .find(|dep| page[dep].get("error").is_some())
        .map(|dep| format!("{dep}: {}", page[dep]))
}

fn start() -> (ConfigDir, Mesh, SteadyLoad) {
    let cfg = shop(NAME, 89);
    let mesh = Mesh::up(NAME, &cfg.path);
    let load = SteadyLoad::start(mesh.ingress_port, "/api", Duration::from_millis(50), api_ok);
    (cfg, mesh, load)
}

fn read(cfg: &ConfigDir, file: &str) -> String {
    std::fs::read_to_string(cfg.path.join(file)).expect("config file")
}

/// The ready pods of `workload`, by name, with their addresses.
fn ready(mesh: &Mesh, workload: &str) -> Vec<(String, String)> {
    (mesh.pods().iter())
        .filter(|p| p["workload"] == workload)
        .filter(|p| p["app"]["state"] == "ready" && p["proxy"]["state"] == "ready")
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["ip"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// Stops the load a moment after the change (requests on both sides of it) and checks that
/// every request succeeded.
fn finish(load: SteadyLoad) {
    std::thread::sleep(Duration::from_secs(1));
    let (sent, failures) = load.finish();
    eprintln!("steady load: {sent} requests, {} failed", failures.len());
    assert!(sent > 10, "a steady load ran: {sent} requests");
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed: {failures:#?}",
        failures.len()
    );
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn replicas_scale_up_and_down_while_every_request_succeeds() {
    let _serial = serial();
    let (cfg, mesh, load) = start();
    let before: Vec<(String, String)> = (mesh.pods().iter())
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["ip"].as_str().unwrap().into(),
            )
        })
        .collect();
    let catalog = read(&cfg, "catalog.yaml");
    cfg.write(
        "catalog.yaml",
        &catalog.replace(
            "serviceAccountName: catalog",
            "serviceAccountName: catalog\n  replicas: 3",
        ),
    );
    let three = ["catalog-0", "catalog-1", "catalog-2"];
    mesh.eventually("three catalog pods run and are endpoints", WAIT, || {
        ready(&mesh, "catalog").len() == 3 && mesh.endpoints("frontend-0", "shop/catalog") == three
    });
    // The new pods have addresses of their own; every other pod kept its own.
    let now: Vec<(String, String)> = (mesh.pods().iter())
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["ip"].as_str().unwrap().into(),
            )
        })
        .collect();
    for pod in &before {
        assert!(now.contains(pod), "{pod:?} moved: {now:?}");
    }
    let ips: BTreeSet<&String> = now.iter().map(|(_, ip)| ip).collect();
    assert_eq!(ips.len(), now.len(), "an address is used twice: {now:?}");
    let mut seen = BTreeSet::new();
    mesh.eventually("requests reach every catalog pod", WAIT, || {
        if let Ok((200, body)) = http_get(mesh.ingress_port, "/api")
            && let Ok(page) = serde_json::from_str::<serde_json::Value>(&body)
            && let Some(pod) = page["catalog"]["by"]["pod"].as_str()
        {
            seen.insert(pod.to_string());
        }
        seen.len() == 3
    });

    cfg.write("catalog.yaml", &catalog);
    mesh.eventually(
        "the extra catalog pods stop and leave the endpoints",
        WAIT,
        || {
            let names: Vec<String> = (mesh.pods().iter())
                .filter(|p| p["workload"] == "catalog")
                .map(|p| p["name"].as_str().unwrap().into())
                .collect();
            names == ["catalog-0"] && mesh.endpoints("frontend-0", "shop/catalog") == ["catalog-0"]
        },
    );
    let netns = text(
        &std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap(),
    );
    assert!(
        !netns.contains(&format!("{NAME}-shop-catalog-1")),
        "{netns}"
    );
    let log = mesh.up_log();
    let gone = |pod: &str| log.find(&format!("pod shop/{pod}: gone from the configuration"));
    assert!(
        gone("catalog-2") < gone("catalog-1") && gone("catalog-1").is_some(),
        "{log}"
    );
    finish(load);
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn a_new_env_replaces_the_frontends_one_at_a_time_while_every_request_succeeds() {
    let _serial = serial();
    let (cfg, mesh, load) = start();
    let pid = |pod: &str| Mesh::pod(&mesh.pods(), pod)["app"]["pid"].as_u64();
    let old = [pid("frontend-0"), pid("frontend-1")];
    // Enough requests before the change to see the page works.
    mesh.eventually("requests flow", WAIT, || load.sent() > 20);
    let frontend = read(&cfg, "frontend.yaml");
    cfg.write(
        "frontend.yaml",
        &frontend.replace(
            "  - {name: CART_URL, value: \"http://cart:8080\"}",
            "  - {name: CART_URL, value: \"http://cart:8080\"}\n  - {name: GREETING, value: hello}",
        ),
    );
    mesh.eventually("both frontends run with the new env", WAIT, || {
        let new = [pid("frontend-0"), pid("frontend-1")];
        let replaced = new.iter().zip(&old).all(|(n, o)| n.is_some() && n != o);
        replaced && ready(&mesh, "frontend").len() == 2
    });
    for pod in ["frontend-0", "frontend-1"] {
        let pid = pid(pod).unwrap();
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        let env = String::from_utf8_lossy(&env);
        assert!(
            env.split('\0').any(|v| v == "GREETING=hello"),
            "{pod}: {env}"
        );
    }
    // One at a time: the second goes once the first is back.
    let log = mesh.up_log();
    let at = |what: &str| {
        log.find(what)
            .unwrap_or_else(|| panic!("no {what:?} in the log:\n{log}"))
    };
    assert!(
        at("pod shop/frontend-0 restarted") < at("pod shop/frontend-1: env changed"),
        "{log}"
    );
    finish(load);
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn what_the_running_mesh_cannot_change_is_refused_by_name_and_the_rest_applies() {
    let _serial = serial();
    let (cfg, mesh, load) = start();
    let mesh_yaml = read(&cfg, "mesh.yaml");
    let catalog = read(&cfg, "catalog.yaml");
    cfg.write(
        "mesh.yaml",
        &mesh_yaml.replace("network: {", "network: {nodes: 2, "),
    );
    cfg.write(
        "catalog.yaml",
        &catalog.replace(
            "serviceAccountName: catalog",
            "serviceAccountName: catalog\n  replicas: 2",
        ),
    );
    let refusal =
        "configuration change refused while the mesh runs: Mesh spec.network.nodes: 1 → 2";
    mesh.eventually("the refusal is in weft up's log", WAIT, || {
        mesh.up_log().contains(refusal)
    });
    mesh.eventually("the rest of the change applies", WAIT, || {
        ready(&mesh, "catalog").len() == 2
    });
    let out = mesh.weft(&["get", "pods"]);
    assert!(out.status.success());
    let shown = String::from_utf8_lossy(&out.stderr);
    assert!(shown.contains(refusal), "weft get pods: {}", text(&out));
    assert!(shown.contains("restart weft up"), "{shown}");
    // Still one node: nothing moved.
    assert!(mesh.pods().iter().all(|p| p["node"] == "node-1"));

    // Taken back: nothing is refused any more.
    cfg.write("mesh.yaml", &mesh_yaml);
    let refused = || {
        let out = mesh.weft(&["get", "pods"]);
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    mesh.eventually("the refusal is gone", WAIT, || {
        !refused().contains("refused")
    });
    // An invalid configuration changes nothing, and says so where the pods are listed.
    cfg.write(
        "typo.yaml",
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: typo, namespace: shop}\nspec: {command: [sleep, \"60\"], replcas: 2}\n",
    );
    mesh.eventually("the invalid configuration is said", WAIT, || {
        let said = refused();
        said.contains("has errors") && said.contains("typo.yaml")
    });
    assert!(mesh.pods().iter().all(|p| p["workload"] != "typo"));
    std::fs::remove_file(cfg.path.join("typo.yaml")).unwrap();
    mesh.eventually("nothing is refused", WAIT, || {
        !refused().contains("refused")
    });
    finish(load);
}
