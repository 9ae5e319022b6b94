//! The pod network, for real: a bridge, a pod namespace joined to it, and capture rules that
//! send the pod's outbound TCP to 127.0.0.1:15001 and inbound TCP to POD:15006, with the
//! proxy's marked connections, exempt destinations and exempt ports passing untouched.
//! Needs root (CI runs it with `--include-ignored`).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

use nix::sys::socket::{getsockopt, setsockopt, sockopt};
use weft_local::net;

const MARK: u32 = 0x1234;

fn names() -> (String, String, String) {
    let id = std::process::id() % 100_000;
    (
        format!("wn{id}b"),
        format!("wn{id}-pod"),
        format!("wn{id}v"),
    )
}

fn original_dst(s: &TcpStream) -> SocketAddr {
    let a = getsockopt(&s.as_fd(), sockopt::OriginalDst).expect("SO_ORIGINAL_DST");
    let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
    SocketAddr::from((ip, u16::from_be(a.sin_port)))
}

/// Connects from inside the pod, optionally with the proxy's mark.
fn connect_from_pod(netns: &str, to: SocketAddr, mark: Option<u32>) -> TcpStream {
    net::in_netns(netns, move || {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        if let Some(m) = mark {
            setsockopt(&s, sockopt::Mark, &m)?;
        }
        s.connect_timeout(&to.into(), Duration::from_secs(5))?;
        Ok(TcpStream::from(s))
    })
    .unwrap_or_else(|e| panic!("connecting from the pod to {to}: {e}"))
}

fn accept(l: &TcpListener) -> TcpStream {
    l.set_nonblocking(false).unwrap();
    let (s, _) = l.accept().unwrap();
    s
}

fn echo_once(client: &mut TcpStream, server: &mut TcpStream) {
    client.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
}

#[test]
#[ignore = "needs root: creates a bridge, a network namespace and nftables rules"]
fn capture_redirects_pod_traffic_into_the_proxy_and_lets_its_own_pass() {
    let (bridge, netns, veth) = names();
    let host = Ipv4Addr::new(198, 19, 254, 1);
    let pod = Ipv4Addr::new(198, 19, 254, 2);
    let cleanup = || {
        // As weft down does: the host end first (the kernel frees a namespace's links late).
        let _ = net::delete_link(&veth);
        let _ = net::delete_netns(&netns);
        let _ = net::delete_link(&bridge);
    };
    cleanup();
    let result = std::panic::catch_unwind(|| {
        net::create_bridge(&bridge, host, 24).expect("bridge");
        net::create_netns(&netns).expect("netns");
        net::add_pod_interface(&net::PodInterface {
            bridge: bridge.clone(),
            host_side: veth.clone(),
            netns: netns.clone(),
            addr: pod,
            prefix: 24,
            gateway: host,
        })
        .expect("veth");
        // A host service that the pod may reach directly (like the control plane).
        let exempt = TcpListener::bind((host, 0)).unwrap();
        let exempt_addr = exempt.local_addr().unwrap();
        // Another host service, reached only through the proxy.
        let other = TcpListener::bind((host, 0)).unwrap();
        let other_addr = other.local_addr().unwrap();
        net::install_capture(
            &netns,
            &net::Capture {
                pod_ip: pod,
                outbound_port: 15001,
                inbound_port: 15006,
                proxy_mark: MARK,
                inbound_exempt_ports: vec![15021],
                outbound_exempt: vec![SocketAddrV4::new(host, exempt_addr.port())],
            },
        )
        .expect("capture rules");
        let (outbound, inbound, readiness) = net::in_netns(&netns, || {
            Ok((
                TcpListener::bind("127.0.0.1:15001")?,
                TcpListener::bind("0.0.0.0:15006")?,
                TcpListener::bind("0.0.0.0:15021")?,
            ))
        })
        .unwrap();

        // Outbound to a service address lands on the proxy, which can read where it was going.
        let vip: SocketAddr = "198.19.200.7:80".parse().unwrap();
        let mut app = connect_from_pod(&netns, vip, None);
        let mut proxy_side = accept(&outbound);
        assert_eq!(original_dst(&proxy_side), vip);
        echo_once(&mut app, &mut proxy_side);

        // So does outbound to a real host address...
        let _app = connect_from_pod(&netns, other_addr, None);
        assert_eq!(original_dst(&accept(&outbound)), other_addr);
        // ...unless the connection carries the proxy's mark.
        let mut marked = connect_from_pod(&netns, other_addr, Some(MARK));
        echo_once(&mut marked, &mut accept(&other));
        // Exempt destinations are reached directly.
        let mut direct = connect_from_pod(&netns, exempt_addr, None);
        echo_once(&mut direct, &mut accept(&exempt));

        // Inbound from the bridge lands on the inbound listener with the pod's address...
        let mut peer = TcpStream::connect_timeout(&(pod, 8080).into(), Duration::from_secs(5))
            .expect("inbound connect");
        let mut proxy_in = accept(&inbound);
        assert_eq!(original_dst(&proxy_in), SocketAddr::from((pod, 8080)));
        echo_once(&mut peer, &mut proxy_in);
        // ...but exempt ports reach their own listener.
        let mut probe = TcpStream::connect_timeout(&(pod, 15021).into(), Duration::from_secs(5))
            .expect("readiness connect");
        echo_once(&mut probe, &mut accept(&readiness));
    });
    cleanup();
    assert!(!net::link_exists(&bridge), "bridge {bridge} left behind");
    assert!(!net::link_exists(&veth), "veth {veth} left behind");
    assert!(
        !net::netns_path(&netns).exists(),
        "namespace {netns} left behind"
    );
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

/// Connects from inside the pod, returning the error if refused or timed out.
fn try_connect_from_pod(netns: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    net::in_netns(netns, move || {
        TcpStream::connect_timeout(&to, Duration::from_secs(5))
    })
}

/// Takes every connection waiting on `l` without blocking.
fn drain(l: &TcpListener) -> usize {
    l.set_nonblocking(true).unwrap();
    std::iter::from_fn(|| l.accept().ok()).count()
}

#[test]
#[ignore = "needs root: creates a bridge, a network namespace and nftables rules"]
fn service_addresses_lead_to_ready_endpoints_and_the_rest_is_refused_at_once() {
    let id = std::process::id() % 100_000;
    let (bridge, netns, veth) = (
        format!("nos{id}b"),
        format!("nos{id}-pod"),
        format!("nos{id}v"),
    );
    let host = Ipv4Addr::new(198, 19, 39, 1);
    let pod = Ipv4Addr::new(198, 19, 39, 2);
    let service_cidr = (Ipv4Addr::new(198, 19, 39, 128), 25);
    let cleanup = || {
        let _ = net::delete_link(&veth);
        let _ = net::delete_netns(&netns);
        let _ = net::delete_link(&bridge);
    };
    cleanup();
    let result = std::panic::catch_unwind(|| {
        net::create_bridge(&bridge, host, 25).expect("bridge");
        net::create_netns(&netns).expect("netns");
        net::add_pod_interface(&net::PodInterface {
            bridge: bridge.clone(),
            host_side: veth.clone(),
            netns: netns.clone(),
            addr: pod,
            prefix: 25,
            gateway: host,
        })
        .expect("veth");
        // Two endpoints (on the host, standing in for pods) behind one Service address.
        let (a, b) = (
            TcpListener::bind((host, 0)).unwrap(),
            TcpListener::bind((host, 0)).unwrap(),
        );
        let at = |l: &TcpListener| match l.local_addr().unwrap() {
            SocketAddr::V4(v4) => v4,
            SocketAddr::V6(_) => unreachable!("bound to IPv4"),
        };
        let (busy, empty): (SocketAddr, SocketAddr) = (
            "198.19.39.129:80".parse().unwrap(),
            "198.19.39.130:80".parse().unwrap(),
        );
        let v4 = |s: SocketAddr| match s {
            SocketAddr::V4(v) => v,
            SocketAddr::V6(_) => unreachable!(),
        };
        net::install_service_nat(
            &netns,
            &net::ServiceNat {
                service_cidr,
                ports: vec![
                    net::VipPort {
                        vip: v4(busy),
                        endpoints: vec![at(&a), at(&b)],
                    },
                    net::VipPort {
                        vip: v4(empty),
                        endpoints: vec![],
                    },
                ],
            },
        )
        .expect("service table");

        // Connections to the busy address are spread over both endpoints.
        let n = 40;
        let _held: Vec<TcpStream> = (0..n)
            .map(|_| try_connect_from_pod(&netns, busy).expect("connect to the service"))
            .collect();
        let (to_a, to_b) = (drain(&a), drain(&b));
        assert_eq!(to_a + to_b, n);
        assert!(to_a > 0 && to_b > 0, "all on one endpoint: {to_a} / {to_b}");

        // No ready endpoint, or a port the Service does not have: refused, not left to hang.
        for to in [empty, "198.19.39.129:81".parse().unwrap()] {
            let e = try_connect_from_pod(&netns, to).expect_err("nothing behind it");
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{to}: {e}");
        }

        // The endpoints change: the table is replaced as a whole.
        net::install_service_nat(
            &netns,
            &net::ServiceNat {
                service_cidr,
                ports: vec![net::VipPort {
                    vip: v4(empty),
                    endpoints: vec![at(&b)],
                }],
            },
        )
        .expect("replacing the service table");
        let mut client = try_connect_from_pod(&netns, empty).expect("now it has an endpoint");
        echo_once(&mut client, &mut accept(&b));
        let e = try_connect_from_pod(&netns, busy).expect_err("its endpoints are gone");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    });
    cleanup();
    assert!(!net::link_exists(&bridge), "bridge {bridge} left behind");
    assert!(
        !net::netns_path(&netns).exists(),
        "namespace {netns} left behind"
    );
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
