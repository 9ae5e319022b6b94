//! Proxy memory against mesh size: one `weft proxy` in explicit mode (no capture) in a mesh of
//! 10 or 10 000 Services, calling three of them (its outbound target is Service 0, whose
//! HTTPRoute sends `/a`, `/b`, `/c` to Services 0, 1 and 2, served by a small HTTP server here).
//! Its memory should not depend on the Services it never calls.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::mesh;
use crate::proc::{self, Memory, Proc};

#[derive(Debug, Clone)]
pub struct Options {
    pub weft: PathBuf,
    pub work: PathBuf,
    /// Requests per called Service.
    pub requests: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub services_in_mesh: usize,
    pub services_called: usize,
    pub requests: usize,
    pub errors: usize,
    /// Ready, before any call.
    pub proxy_idle: Memory,
    /// After the calls (hwm: the peak since idle).
    pub proxy_after_calls: Memory,
    /// Services the proxy holds afterwards (its admin `/config_dump`).
    pub services_held: usize,
    pub control: Memory,
}

pub async fn run(opts: &Options, services: usize) -> anyhow::Result<Run> {
    let work = opts.work.join(format!("proxy-mem-{services}"));
    let _ = std::fs::remove_dir_all(&work);
    let dir = work.join("config");
    let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let backend_addr = backend.local_addr()?;
    tokio::spawn(serve(backend));
    mesh::write_config(&dir, services, true)?;
    let called: Vec<(usize, SocketAddr)> =
        (0..3.min(services)).map(|s| (s, backend_addr)).collect();
    let pods_file = work.join("pods.json");
    mesh::write_pods(&pods_file, &mesh::pods(services, services, &called))?;

    let port = proc::free_port;
    let (discovery, cp_admin) = (port()?, port()?);
    let cp_admin_addr: SocketAddr = ([127, 0, 0, 1], cp_admin).into();
    let control_args: Vec<String> = [
        "control".to_string(),
        "-c".into(),
        dir.display().to_string(),
        "--pods".into(),
        pods_file.display().to_string(),
        "--discovery".into(),
        format!("127.0.0.1:{discovery}"),
        "--admin".into(),
        cp_admin_addr.to_string(),
        "--warmup".into(),
        "0s".into(),
    ]
    .to_vec();
    let mut control = Proc::spawn(
        "weft control",
        &opts.weft,
        &control_args,
        &work.join("control.log"),
    )?;
    tokio::task::block_in_place(|| {
        proc::wait_ok(
            &mut control,
            cp_admin_addr,
            "/ready",
            Duration::from_secs(120),
        )
    })?;

    let [outbound, inbound, admin, readiness, metrics, tunnel] =
        [port()?, port()?, port()?, port()?, port()?, port()?];
    let local = |p: u16| format!("127.0.0.1:{p}");
    let proxy_args: Vec<String> = vec![
        "proxy".into(),
        "--control-plane".into(),
        format!("http://127.0.0.1:{discovery}"),
        "--workload".into(),
        "caller".into(),
        "--pod".into(),
        "caller-0".into(),
        "--namespace".into(),
        mesh::NAMESPACE.into(),
        "--ip".into(),
        "127.0.0.1".into(),
        "--outbound".into(),
        local(outbound),
        "--outbound-target".into(),
        format!("{}:80", mesh::TARGET_VIP),
        "--inbound".into(),
        local(inbound),
        "--inbound-app".into(),
        backend_addr.to_string(),
        "--admin".into(),
        local(admin),
        "--readiness".into(),
        local(readiness),
        "--metrics".into(),
        local(metrics),
        "--tunnel".into(),
        local(tunnel),
    ];
    let mut proxy = Proc::spawn(
        "weft proxy",
        &opts.weft,
        &proxy_args,
        &work.join("proxy.log"),
    )?;
    let admin_addr: SocketAddr = ([127, 0, 0, 1], admin).into();
    tokio::task::block_in_place(|| {
        proc::wait_ok(&mut proxy, admin_addr, "/ready", Duration::from_secs(60))
    })
    .with_context(|| format!("see {}", work.join("proxy.log").display()))?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = proxy.pid();
    let proxy_idle = proc::memory(pid)?;
    proc::reset_peak(pid);

    let out_addr: SocketAddr = ([127, 0, 0, 1], outbound).into();
    let requests = opts.requests;
    let errors = tokio::task::block_in_place(|| call(out_addr, called.len(), requests))?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let proxy_after_calls = proc::memory(pid)?;
    let services_held = tokio::task::block_in_place(|| proc::http_get(admin_addr, "/config_dump"))
        .ok()
        .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
        .and_then(|v| v["services"].as_object().map(|m| m.len()))
        .unwrap_or(0);
    let control_mem = proc::memory(control.pid())?;
    proxy.check_running()?;
    drop(proxy);
    drop(control);
    Ok(Run {
        services_in_mesh: services,
        services_called: called.len(),
        requests: requests * called.len(),
        errors,
        proxy_idle,
        proxy_after_calls,
        services_held,
        control: control_mem,
    })
}

/// `requests` GETs of `/a`, `/b`, `/c` (the first `services` of them) on one keep-alive
/// connection each; returns how many did not answer 200.
fn call(addr: SocketAddr, services: usize, requests: usize) -> anyhow::Result<usize> {
    let mut errors = 0;
    for path in ["/a", "/b", "/c"].iter().take(services) {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: svc\r\n\r\n");
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut writer = stream;
        for _ in 0..requests {
            writer.write_all(request.as_bytes())?;
            let (status, _) = read_response(&mut reader)?;
            if status != 200 {
                errors += 1;
            }
        }
    }
    Ok(errors)
}

/// Reads one HTTP/1.1 response with a Content-Length body: (status, body length).
fn read_response(r: &mut impl BufRead) -> anyhow::Result<(u16, usize)> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        bail!("connection closed by the proxy");
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0;
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body)?;
    Ok((status, length))
}

/// A minimal HTTP/1.1 keep-alive server answering `ok` to every bodiless request.
async fn serve(listener: tokio::net::TcpListener) {
    while let Ok((mut s, _)) = listener.accept().await {
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(4096);
            let mut chunk = [0u8; 4096];
            loop {
                while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    buf.drain(..end + 4);
                    let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if s.write_all(reply).await.is_err() {
                        return;
                    }
                }
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        });
    }
}
