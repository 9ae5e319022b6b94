use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use weft_test_support::wait::eventually;

use super::*;

fn request(method: &str, path: &str, status: u16, service: &str) -> Record {
    Record {
        direction: "inbound",
        protocol: "HTTP/1.1".into(),
        method: Some(method.into()),
        path: Some(path.into()),
        status: Some(status),
        service: Some(service.into()),
        ..Record::default()
    }
}

#[test]
fn filters_hold_together() {
    let get_cart = request("GET", "/cart/1", 200, "shop/cart");
    let post_err = request("POST", "/pay", 503, "shop/payments");
    let tcp = Record {
        protocol: "TCP".into(),
        ..Record::default()
    };
    let inbound = |authority: &str| Record {
        service: None,
        authority: Some(authority.into()),
        ..request("GET", "/", 200, "")
    };
    for (to, authority, want) in [
        ("cart", "cart:8080", true),
        ("shop/cart", "cart", true),
        ("shop/cart", "cart.shop.svc.cluster.local:8080", true),
        ("other/cart", "cart.shop:8080", false),
        ("cart", "carts:8080", false),
    ] {
        let f = Query::parse(&format!("to={to}")).unwrap().filter;
        assert_eq!(f.matches(&inbound(authority)), want, "{to} {authority}");
    }
    let q = |s: &str| Query::parse(s).unwrap().filter;
    let table: [(&str, [bool; 3]); 10] = [
        ("", [true, true, true]),
        ("method=get", [true, false, false]),
        ("path=/cart", [true, false, false]),
        ("path=%2Fpa", [false, true, false]),
        ("status=5xx", [false, true, false]),
        ("status=200", [true, false, false]),
        ("to=cart", [true, false, false]),
        ("to=other/cart", [false, false, false]),
        ("to=shop/payments", [false, true, false]),
        (
            "method=GET&status=2xx&to=shop/cart&path=/c",
            [true, false, false],
        ),
    ];
    for (query, want) in table {
        let f = q(query);
        let got = [&get_cart, &post_err, &tcp].map(|r| f.matches(r));
        assert_eq!(got, want, "{query}");
    }
}

#[test]
fn queries_are_checked_and_read_back() {
    assert_eq!(Query::parse("").unwrap().max_rps, DEFAULT_MAX_RPS);
    for bad in [
        "status=6xx",
        "status=5x",
        "status=abc",
        "max_rps=0",
        "who=me",
    ] {
        assert!(Query::parse(bad).is_err(), "{bad}");
    }
    let q = Query {
        filter: Filter {
            method: Some("GET".into()),
            path: Some("/a b&c".into()),
            status: Some(Status::Class(5)),
            to: Some("shop/cart".into()),
        },
        max_rps: 7,
    };
    assert_eq!(Query::parse(&q.encode()).unwrap(), q);
}

#[test]
fn the_cap_admits_max_a_second_and_counts_the_rest() {
    let start = tokio::time::Instant::now();
    let mut cap = RateCap::new(2);
    let admitted: Vec<bool> = (0..4).map(|_| cap.admit(start)).collect();
    assert_eq!(admitted, [true, true, false, false]);
    assert_eq!(cap.dropped, 2);
    assert!(
        cap.admit(start + Duration::from_millis(1000)),
        "a new second"
    );
    assert_eq!(cap.dropped, 2);
}

#[test]
fn a_line_names_the_caller_inbound_and_the_client_outbound() {
    let mut r = request("GET", "/cart", 200, "shop/cart");
    r.downstream = Some("198.19.82.5:40000".into());
    r.peer_identity = Some("spiffe://shop.local/ns/shop/sa/frontend".into());
    r.error = Some("upstream");
    let line = Line::from(&r);
    assert_eq!(line.source, r.peer_identity);
    assert_eq!(line.error.as_deref(), Some("upstream"));
    let text = serde_json::to_string(&line).unwrap();
    assert_eq!(serde_json::from_str::<Line>(&text).unwrap(), line);
    r.direction = "outbound";
    assert_eq!(Line::from(&r).source, r.downstream);
}

#[test]
fn nobody_tapping_sends_nothing() {
    let hub = Arc::new(Hub::default());
    hub.publish(&Record::default());
    let sub = hub.subscribe();
    assert_eq!(hub.taps(), 1);
    assert!(sub.rx.is_empty(), "the record before the tap was not kept");
    drop(sub);
    assert_eq!(hub.taps(), 0);
}

/// A tap over a real connection: lines arrive, and the tap is gone once the client leaves.
#[tokio::test]
async fn a_tap_streams_lines_and_ends_with_its_client() {
    let hub = Arc::new(Hub::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_hub = hub.clone();
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let svc = hyper::service::service_fn(move |req: http::Request<_>| {
            let q = Query::parse(req.uri().query().unwrap_or("")).unwrap();
            let body = stream(&server_hub, q);
            async move { Ok::<_, std::convert::Infallible>(http::Response::new(body)) }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
            .await;
    });
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    client
        .write_all(b"GET /tap?status=2xx&max_rps=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut reader = BufReader::new(client);
    let mut line = String::new();
    eventually("the tap to open", Duration::from_secs(5), async || {
        hub.taps() == 1
    })
    .await;
    hub.publish(&request("GET", "/skip", 500, "shop/cart"));
    for _ in 0..3 {
        hub.publish(&request("GET", "/cart", 200, "shop/cart"));
    }
    // Headers, then the first chunk's size line, then the line itself.
    let mut lines = Vec::new();
    while !line.starts_with('{') {
        line.clear();
        reader.read_line(&mut line).await.unwrap();
        lines.push(line.clone());
    }
    let first: Line = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(first.path.as_deref(), Some("/cart"), "{lines:?}");
    // The other two went over the cap: reported within the next second.
    line.clear();
    while !line.starts_with(r#"{"dropped""#) {
        line.clear();
        reader.read_line(&mut line).await.unwrap();
    }
    assert_eq!(line.trim(), r#"{"dropped":2}"#);
    drop(reader);
    eventually("the tap to close", Duration::from_secs(5), async || {
        hub.taps() == 0
    })
    .await;
    server.await.unwrap();
}
