use super::*;

fn rev(name: &str) -> Revision {
    Revision {
        name: name.into(),
        binary: "/usr/bin/weft".into(),
        version: "0.1.0".into(),
        protocol: 1,
        sets: vec![],
        installed_at_ms: 0,
        uninstalled: false,
    }
}

fn two() -> Registry {
    let mut r = Registry::first(rev("v0-1-0"));
    r.revisions.push(rev("canary"));
    r
}

#[test]
fn a_label_means_a_tag_first_then_a_revision_and_none_means_the_default_tag() {
    let mut r = two();
    r.set_tag("prod", "canary", false).unwrap();
    assert_eq!(r.resolve(None).unwrap(), "v0-1-0");
    assert_eq!(r.resolve(Some("prod")).unwrap(), "canary");
    assert_eq!(r.resolve(Some("v0-1-0")).unwrap(), "v0-1-0");
    let e = r.resolve(Some("beta")).unwrap_err();
    assert!(e.contains("beta names no revision or tag"), "{e}");
    assert!(e.contains("revisions: v0-1-0, canary"), "{e}");
}

#[test]
fn moving_a_tag_needs_overwrite_and_an_installed_revision() {
    let mut r = two();
    let e = r.set_tag("default", "canary", false).unwrap_err();
    assert!(e.contains("add --overwrite"), "{e}");
    assert!(
        r.set_tag("default", "canary", true)
            .unwrap()
            .contains("was v0-1-0")
    );
    assert_eq!(r.resolve(None).unwrap(), "canary");
    let e = r.set_tag("prod", "gone", false).unwrap_err();
    assert!(e.starts_with("no revision gone"), "{e}");
    let e = r.set_tag("canary", "v0-1-0", false).unwrap_err();
    assert!(e.contains("is a revision"), "{e}");
    assert!(r.set_tag("Prod", "canary", false).is_err());
}

#[test]
fn a_tag_whose_revision_went_away_says_how_to_fix_it() {
    let mut r = two();
    r.set_tag("prod", "canary", false).unwrap();
    r.revisions[1].uninstalled = true;
    let e = r.resolve(Some("prod")).unwrap_err();
    assert!(
        e.contains("tag prod points at revision canary, which is not installed"),
        "{e}"
    );
}

#[test]
fn a_revision_in_use_cannot_be_uninstalled() {
    let r = two();
    let b = r.uninstall_blockers("v0-1-0", &["pod shop/cart-0".into()]);
    assert_eq!(b.len(), 2, "{b:?}");
    assert!(b[0].starts_with("tag default points at it"), "{b:?}");
    assert!(b[1].starts_with("pod shop/cart-0 runs on it"), "{b:?}");
    assert!(r.uninstall_blockers("canary", &[]).is_empty());
}

#[test]
fn install_names_are_checked() {
    let r = two();
    assert!(
        r.check_install("canary")
            .unwrap_err()
            .contains("already installed")
    );
    assert!(r.check_install("default").unwrap_err().contains("is a tag"));
    assert!(
        r.check_install("Bad_Name")
            .unwrap_err()
            .contains("not valid")
    );
    assert!(r.check_install("v0-2-0").is_ok());
    assert_eq!(version_name("0.2.0"), "v0-2-0");
}

#[test]
fn a_tag_in_use_is_not_removed() {
    let mut r = two();
    r.set_tag("prod", "canary", false).unwrap();
    let e = r
        .remove_tag("prod", &["workload shop/cart".into()])
        .unwrap_err();
    assert!(e.contains("still used by workload shop/cart"), "{e}");
    assert!(r.remove_tag("prod", &[]).is_ok());
    assert!(
        r.remove_tag("prod", &[])
            .unwrap_err()
            .starts_with("no tag prod")
    );
}
