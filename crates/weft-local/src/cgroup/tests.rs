use super::*;

const V1: &str = "\
25 30 0:23 / /sys fs rw shared:7 - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup ro shared:9 - tmpfs tmpfs ro,mode=755
34 33 0:29 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw
36 33 0:31 / /sys/fs/cgroup/cpu,cpuacct rw shared:12 - cgroup cgroup rw,cpu,cpuacct
37 33 0:32 / /sys/fs/cgroup/memory rw shared:13 - cgroup cgroup rw,memory
";

const V2: &str = "\
25 30 0:23 / /sys fs rw shared:7 - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup rw shared:9 - cgroup2 cgroup2 rw,nsdelegate
";

fn offers(list: &'static str) -> impl Fn(&Path) -> String {
    move |_| list.to_string()
}

#[test]
fn v2_is_used_when_it_offers_cpu_and_memory() {
    let h = Hierarchy::from_mountinfo(V2, offers("cpuset cpu io memory pids\n")).unwrap();
    assert_eq!(
        h,
        Hierarchy::V2 {
            root: "/sys/fs/cgroup".into()
        }
    );
}

#[test]
fn a_hybrid_machine_uses_its_v1_controllers() {
    // The v2 tree of a hybrid machine offers none of them: they are bound to v1.
    let h = Hierarchy::from_mountinfo(V1, offers("")).unwrap();
    assert_eq!(
        h,
        Hierarchy::V1 {
            cpu: "/sys/fs/cgroup/cpu,cpuacct".into(),
            cpuacct: Some("/sys/fs/cgroup/cpu,cpuacct".into()),
            memory: "/sys/fs/cgroup/memory".into(),
        }
    );
    let g = h.group("demo", "shop", "cart-0", "proxy");
    let procs: Vec<String> = (g.procs_files().iter())
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        procs,
        [
            "/sys/fs/cgroup/cpu,cpuacct/weft.demo/shop.cart-0.proxy/cgroup.procs",
            "/sys/fs/cgroup/memory/weft.demo/shop.cart-0.proxy/cgroup.procs",
        ]
    );
}

#[test]
fn without_controllers_the_reason_names_what_is_missing() {
    let no_memory = V1.replace("rw,memory", "rw,pids");
    let why = Hierarchy::from_mountinfo(&no_memory, offers("pids")).unwrap_err();
    assert!(why.contains("offers [pids]"), "{why}");
    assert!(why.contains("v1 memory controller is not mounted"), "{why}");
    let none = Hierarchy::from_mountinfo("", offers("")).unwrap_err();
    assert!(none.contains("no cgroup v2"), "{none}");
}

/// An empty directory of this test's own, standing in for a controller's mount.
fn scratch(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("weft-cg-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).unwrap();
    path
}

fn limits() -> Limits {
    Limits {
        cpu_request_m: Some(50),
        cpu_limit_m: Some(500),
        memory_request: Some(64 << 20),
        memory_limit: Some(256 << 20),
    }
}

#[test]
fn v2_limits_are_written_as_the_kubelet_writes_them() {
    let root = scratch("v2");
    let h = Hierarchy::V2 { root: root.clone() };
    let g = h.group("demo", "shop", "cart-0", "proxy");
    g.create(&limits()).unwrap();
    let dir = root.join("weft.demo/shop.cart-0.proxy");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    assert_eq!(read("cpu.max"), "50000 100000");
    // 50m: 51 shares, weight 1 + (51 - 2) * 9999 / 262142.
    assert_eq!(read("cpu.weight"), "2");
    assert_eq!(read("memory.max"), (256u64 << 20).to_string());
    // Controllers are enabled from the root down to the group's parent.
    for parent in [root.clone(), root.join("weft.demo")] {
        let control = std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap();
        assert_eq!(control, "+cpu +memory");
    }
    // No CPU limit: the quota is `max`.
    let unlimited = h.group("demo", "shop", "web-0", "app");
    unlimited.create(&Limits::default()).unwrap();
    let max = std::fs::read_to_string(root.join("weft.demo/shop.web-0.app/cpu.max")).unwrap();
    assert_eq!(max, "max 100000");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn v1_limits_go_to_each_controller() {
    let root = scratch("v1");
    let h = Hierarchy::V1 {
        cpu: root.join("cpu"),
        cpuacct: Some(root.join("cpuacct")),
        memory: root.join("memory"),
    };
    for c in ["cpu", "cpuacct", "memory"] {
        std::fs::create_dir_all(root.join(c).join("weft.demo")).unwrap();
    }
    h.group("demo", "shop", "cart-0", "proxy")
        .create(&limits())
        .unwrap();
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap();
    assert_eq!(
        read("cpu/weft.demo/shop.cart-0.proxy/cpu.cfs_quota_us"),
        "50000"
    );
    assert_eq!(read("cpu/weft.demo/shop.cart-0.proxy/cpu.shares"), "51");
    assert_eq!(
        read("memory/weft.demo/shop.cart-0.proxy/memory.limit_in_bytes"),
        (256u64 << 20).to_string()
    );
    assert!(root.join("cpuacct/weft.demo/shop.cart-0.proxy").is_dir());
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn counters_are_read_from_key_value_files() {
    let text = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
    assert_eq!(read::field(text, "oom_kill"), Some(3));
    assert_eq!(read::field(text, "oom"), None);
}

/// A real group on this machine: a program that allocates past its memory limit is killed by
/// the kernel, and the group counts the kill.
#[test]
#[ignore = "needs root: makes a cgroup"]
fn a_process_over_its_memory_limit_is_oom_killed() {
    use std::io::Write;
    use std::os::unix::process::ExitStatusExt;
    let h = hierarchy().clone().expect("cgroups on this machine");
    let instance = format!("t{}", std::process::id());
    let g = h.group(&instance, "test", "hog-0", "app");
    let small = Limits {
        memory_limit: Some(16 << 20),
        ..Limits::default()
    };
    g.create(&small).unwrap();
    // It waits for a line before it allocates: by then it is in the group.
    let mut child = std::process::Command::new("sh")
        .args(["-c", "read go; exec python3 -c 'x = bytearray(96 << 20)'"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    join(&g.procs_files(), child.id()).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status:?}");
    assert_eq!(g.oom_kills(), 1);
    g.remove();
    h.remove_instance(&instance);
    assert!(!g.exists());
}
