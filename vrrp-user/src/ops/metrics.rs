//! Prometheus metrics: the [`DaemonReport`] in the text exposition format,
//! served on `GET /metrics` by a minimal HTTP/1.1 server (off unless
//! `--metrics ADDR` is given; a bare port binds 127.0.0.1).
//!
//! Names follow the keepalived exporters' (`keepalived_vrrp_state`,
//! `keepalived_advertisements_received_total`, ...) with an `xvrrpd_`
//! prefix and the same `iname`/`intf`/`vrid` labels, so dashboards carry
//! over by renaming the prefix. `xvrrpd_vrrp_state` keeps keepalived's
//! numbers: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT, 98 STOP.

use std::{
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use thiserror::Error;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tracing::{debug, warn};

use crate::report::{DaemonReport, InstanceReport, ReportHandle};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Scrapes served at once; more wait for a free slot.
const MAX_CONNECTIONS: usize = 8;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_REQUEST_HEAD: usize = 8192;

#[derive(Debug, Error)]
pub enum MetricsError {
    #[error("--metrics {0:?}: expected PORT, :PORT, ADDR:PORT or [ADDR6]:PORT")]
    BadAddress(String),
    #[error("metrics endpoint {addr}: {what}: {error}")]
    Io {
        addr: SocketAddr,
        what: &'static str,
        error: std::io::Error,
    },
}

/// `9650`, `:9650` → 127.0.0.1:9650; `0.0.0.0:9650`, `[::1]:9650` as given.
pub fn parse_listen(s: &str) -> Result<SocketAddr, MetricsError> {
    let t = s.trim();
    let local = |port: &str| {
        port.parse::<u16>()
            .ok()
            .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
    };
    let addr = if let Some(port) = t.strip_prefix(':') {
        local(port)
    } else {
        local(t).or_else(|| t.parse::<SocketAddr>().ok())
    };
    addr.ok_or_else(|| MetricsError::BadAddress(s.to_owned()))
}

/// keepalived's state numbers (vrrp.h), which its exporters publish.
pub fn state_number(state: &str) -> Option<u8> {
    match state {
        "INIT" => Some(0),
        "BACKUP" => Some(1),
        "MASTER" => Some(2),
        "FAULT" => Some(3),
        "STOP" => Some(98),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
}

struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    fn family(&mut self, name: &'static str, kind: Kind, help: &'static str) -> &mut Family {
        if let Some(i) = self.families.iter().position(|f| f.name == name) {
            return &mut self.families[i];
        }
        self.families.push(Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        });
        self.families.last_mut().expect("just pushed")
    }

    fn gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: Vec<(&'static str, String)>,
        v: f64,
    ) {
        self.family(name, Kind::Gauge, help)
            .samples
            .push((labels, v));
    }

    fn counter(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: Vec<(&'static str, String)>,
        v: u64,
    ) {
        self.family(name, Kind::Counter, help)
            .samples
            .push((labels, v as f64));
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for f in self.families.iter().filter(|f| !f.samples.is_empty()) {
            let kind = match f.kind {
                Kind::Gauge => "gauge",
                Kind::Counter => "counter",
            };
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(f.help));
            let _ = writeln!(out, "# TYPE {} {kind}", f.name);
            for (labels, value) in &f.samples {
                out.push_str(f.name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {}", number(*value));
            }
        }
        out
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', r"\\").replace('\n', r"\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn instance_labels(i: &InstanceReport) -> Vec<(&'static str, String)> {
    vec![
        ("iname", i.name.clone()),
        ("intf", i.interface.clone()),
        ("vrid", i.vrid.to_string()),
    ]
}

/// The report in Prometheus' text format.
pub fn render(r: &DaemonReport) -> String {
    let mut e = Exposition {
        families: Vec::new(),
    };
    e.gauge(
        "xvrrpd_build_info",
        "Always 1; the version in a label.",
        vec![("version", r.version.clone())],
        1.0,
    );
    e.gauge(
        "xvrrpd_start_time_seconds",
        "When the daemon started, in seconds since the epoch.",
        vec![],
        r.started_unix,
    );
    e.gauge(
        "xvrrpd_advert_thread_rt_priority",
        "SCHED_FIFO priority of the advert thread (0: normal scheduling).",
        vec![],
        f64::from(r.rt_priority),
    );
    for i in &r.instances {
        let l = instance_labels(i);
        if let Some(n) = state_number(&i.state) {
            e.gauge(
                "xvrrpd_vrrp_state",
                "VRRP state as keepalived numbers it: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT, 98 STOP.",
                l.clone(),
                f64::from(n),
            );
        }
        e.gauge(
            "xvrrpd_vrrp_base_priority",
            "Configured priority.",
            l.clone(),
            f64::from(i.base_priority),
        );
        e.gauge(
            "xvrrpd_vrrp_effective_priority",
            "Priority after tracker weights; what the instance advertises.",
            l.clone(),
            f64::from(i.effective_priority),
        );
        e.gauge(
            "xvrrpd_vrrp_advert_interval_seconds",
            "Configured advertisement interval.",
            l.clone(),
            i.advert_interval_s,
        );
        if let Some(m) = &i.master {
            let mut ml = l.clone();
            ml.push(("master", m.address.clone()));
            e.gauge(
                "xvrrpd_vrrp_master_priority",
                "Priority of the current master's latest advert, as the kernel recorded it (while backup).",
                ml.clone(),
                f64::from(m.priority),
            );
            e.gauge(
                "xvrrpd_vrrp_master_advert_age_seconds",
                "Time since the kernel recorded the current master's latest advert (while backup).",
                ml,
                m.age_s,
            );
        }
        if let Some(t) = &i.last_transition {
            e.gauge(
                "xvrrpd_vrrp_last_transition_timestamp_seconds",
                "When the instance last changed state, in seconds since the epoch.",
                l.clone(),
                t.at_unix,
            );
        }
        e.counter(
            "xvrrpd_vrrp_transitions_total",
            "State changes.",
            l.clone(),
            i.transitions,
        );
        e.counter(
            "xvrrpd_become_master_total",
            "Times the instance became master.",
            l.clone(),
            i.become_master,
        );
        e.counter(
            "xvrrpd_release_master_total",
            "Times the instance left the master state.",
            l.clone(),
            i.release_master,
        );
        e.counter(
            "xvrrpd_advertisements_sent_total",
            "Adverts sent.",
            l.clone(),
            i.adverts_sent,
        );
        e.counter(
            "xvrrpd_advertisements_received_total",
            "Adverts the XDP recorder accepted for the instance, from every peer.",
            l.clone(),
            i.adverts_received,
        );
        e.counter(
            "xvrrpd_priority_zero_sent_total",
            "Priority-0 adverts sent (releasing the master role).",
            l.clone(),
            i.priority_zero_sent,
        );
        e.counter(
            "xvrrpd_priority_zero_received_total",
            "Priority-0 adverts received.",
            l.clone(),
            i.priority_zero_received,
        );
        for t in &i.trackers {
            let tl = vec![
                ("iname", i.name.clone()),
                ("type", t.kind.clone()),
                ("name", t.name.clone()),
            ];
            e.gauge(
                "xvrrpd_tracker_failing",
                "1 while the tracker lowers the instance's priority or faults it.",
                tl.clone(),
                if t.failing { 1.0 } else { 0.0 },
            );
            e.gauge(
                "xvrrpd_tracker_weight",
                "The tracker's weight for the instance (0: a failure means FAULT).",
                tl.clone(),
                f64::from(t.weight),
            );
            match t.status.as_str() {
                "up" | "down" => e.gauge(
                    "xvrrpd_tracker_up",
                    "Tracker status: 1 up (script succeeds, link up, process running), 0 down.",
                    tl,
                    if t.status == "up" { 1.0 } else { 0.0 },
                ),
                other => {
                    if let Ok(v) = other.parse::<f64>() {
                        e.gauge(
                            "xvrrpd_tracker_file_value",
                            "The number read from a track_file.",
                            tl,
                            v,
                        );
                    }
                }
            }
        }
    }
    for g in &r.sync_groups {
        if let Some(n) = g.state.as_deref().and_then(state_number) {
            e.gauge(
                "xvrrpd_sync_group_state",
                "Sync group state in keepalived's numbers (absent while members move).",
                vec![("group", g.name.clone())],
                f64::from(n),
            );
        }
    }
    for (name, value) in &r.kernel.counters {
        match name.as_str() {
            "vrrp_packets" => e.counter(
                "xvrrpd_xdp_vrrp_packets_total",
                "IP protocol 112 packets the XDP recorder saw.",
                vec![],
                *value,
            ),
            "accepted" => e.counter(
                "xvrrpd_xdp_adverts_recorded_total",
                "Adverts the XDP recorder accepted and recorded.",
                vec![],
                *value,
            ),
            "events_lost" => e.counter(
                "xvrrpd_xdp_events_lost_total",
                "Significant adverts recorded but not signalled (ring buffer full).",
                vec![],
                *value,
            ),
            reason => e.counter(
                "xvrrpd_xdp_adverts_dropped_total",
                "VRRP packets the XDP recorder did not record, by reason.",
                vec![("reason", reason.to_owned())],
                *value,
            ),
        }
    }
    let blind = &r.kernel.blind;
    e.counter(
        "xvrrpd_recorder_blind_episodes_total",
        "Spells in which the network stack received adverts of an instance that the recorder did not.",
        vec![],
        blind.episodes,
    );
    e.counter(
        "xvrrpd_recorder_blind_adverts_total",
        "Adverts the network stack received that the recorder did not record.",
        vec![],
        blind.missed_adverts,
    );
    for i in &r.instances {
        e.gauge(
            "xvrrpd_recorder_blind",
            "1 while the stack receives adverts of the instance that the recorder does not.",
            vec![("iname", i.name.clone())],
            if blind.instances.contains(&i.name) {
                1.0
            } else {
                0.0
            },
        );
    }
    e.counter(
        "xvrrpd_config_reloads_total",
        "Configuration reloads (SIGHUP).",
        vec![],
        r.reloads.count,
    );
    if let Some(ok) = r.reloads.last_ok {
        e.gauge(
            "xvrrpd_config_last_reload_successful",
            "1 if the last reload applied, 0 if it was refused.",
            vec![],
            if ok { 1.0 } else { 0.0 },
        );
    }
    if let Some(t) = r.reloads.last_unix {
        e.gauge(
            "xvrrpd_config_last_reload_timestamp_seconds",
            "When the last reload happened, in seconds since the epoch.",
            vec![],
            t,
        );
    }
    e.render()
}

/// The bound endpoint.
#[derive(Debug)]
pub struct MetricsServer {
    listener: Option<std::net::TcpListener>,
    addr: SocketAddr,
}

impl MetricsServer {
    pub fn bind(addr: SocketAddr) -> Result<Self, MetricsError> {
        let io = |what| {
            move |source| MetricsError::Io {
                addr,
                what,
                error: source,
            }
        };
        let listener = std::net::TcpListener::bind(addr).map_err(io("bind"))?;
        listener.set_nonblocking(true).map_err(io("O_NONBLOCK"))?;
        let addr = listener.local_addr().map_err(io("getsockname"))?;
        Ok(MetricsServer {
            listener: Some(listener),
            addr,
        })
    }

    /// Where it listens (the port the kernel chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves scrapes until the task is aborted. Must be called within a tokio runtime.
    pub fn serve(
        &mut self,
        reports: ReportHandle,
    ) -> Result<tokio::task::JoinHandle<()>, MetricsError> {
        let addr = self.addr;
        let listener = self.listener.take().expect("serve is called once");
        let listener = TcpListener::from_std(listener).map_err(|source| MetricsError::Io {
            addr,
            what: "registering with the runtime",
            error: source,
        })?;
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        Ok(tokio::spawn(async move {
            loop {
                let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                    return;
                };
                let stream = match listener.accept().await {
                    Ok((s, _)) => s,
                    Err(e) => {
                        warn!(%addr, "metrics: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let reports = reports.clone();
                tokio::spawn(async move {
                    if let Err(e) = http(stream, &reports).await {
                        debug!("metrics client: {e}");
                    }
                    drop(permit);
                });
            }
        }))
    }
}

/// Reads the request head (up to the blank line).
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() > MAX_REQUEST_HEAD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "request head too long",
            ));
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head)
}

async fn http(mut stream: TcpStream, reports: &ReportHandle) -> std::io::Result<()> {
    let head = tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let head = String::from_utf8_lossy(&head);
    let mut words = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => match reports.get().await {
            Some(r) => ("200 OK", CONTENT_TYPE, render(&r)),
            None => (
                "503 Service Unavailable",
                "text/plain; charset=utf-8",
                "xvrrpd is shutting down\n".to_owned(),
            ),
        },
        ("GET" | "HEAD", "/") => (
            "200 OK",
            "text/plain; charset=utf-8",
            "xvrrpd: metrics at /metrics\n".to_owned(),
        ),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: try /metrics\n".to_owned(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET\n".to_owned(),
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status.starts_with("405") {
        response.push_str("Allow: GET, HEAD\r\n");
    }
    response.push_str("\r\n");
    if method != "HEAD" {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn listen_addresses_default_to_localhost() {
        assert_eq!(
            parse_listen("9650").unwrap(),
            "127.0.0.1:9650".parse().unwrap()
        );
        assert_eq!(
            parse_listen(":9650").unwrap(),
            "127.0.0.1:9650".parse().unwrap()
        );
        assert_eq!(
            parse_listen("0.0.0.0:1").unwrap(),
            "0.0.0.0:1".parse().unwrap()
        );
        assert_eq!(
            parse_listen("[::1]:9650").unwrap(),
            "[::1]:9650".parse().unwrap()
        );
        assert_eq!(
            parse_listen("localhost").unwrap_err().to_string(),
            "--metrics \"localhost\": expected PORT, :PORT, ADDR:PORT or [ADDR6]:PORT"
        );
    }

    /// Every sample line, as `name{labels} value`.
    fn line<'a>(text: &'a str, start: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{text}"))
    }

    #[test]
    fn the_sample_renders_with_types_labels_and_values() {
        let text = render(&sample());
        let l = r#"{iname="VI_1",intf="eth0",vrid="51"}"#;
        assert_eq!(
            line(&text, &format!("xvrrpd_vrrp_state{l}")),
            format!("xvrrpd_vrrp_state{l} 1")
        );
        assert!(text.contains(r#"xvrrpd_vrrp_state{iname="VI_2",intf="eth1",vrid="52"} 2"#));
        assert_eq!(
            line(&text, &format!("xvrrpd_vrrp_effective_priority{l}")),
            format!("xvrrpd_vrrp_effective_priority{l} 50")
        );
        assert_eq!(
            line(&text, &format!("xvrrpd_vrrp_base_priority{l}")),
            format!("xvrrpd_vrrp_base_priority{l} 200")
        );
        assert!(text.contains(r#"xvrrpd_vrrp_master_priority{iname="VI_1",intf="eth0",vrid="51",master="192.0.2.2"} 100"#));
        assert!(text.contains(&format!("xvrrpd_advertisements_received_total{l} 340")));
        assert!(text.contains(&format!(
            "xvrrpd_vrrp_last_transition_timestamp_seconds{l} 1796070180.5"
        )));
        assert!(text.contains(r#"xvrrpd_tracker_failing{iname="VI_1",type="script",name="chk"} 1"#));
        assert!(text.contains(r#"xvrrpd_tracker_up{iname="VI_1",type="script",name="chk"} 0"#));
        assert!(text.contains(r#"xvrrpd_xdp_adverts_dropped_total{reason="bad_ttl"} 3"#));
        assert!(text.contains(r#"xvrrpd_xdp_adverts_dropped_total{reason="fragment"} 0"#));
        assert!(text.contains("xvrrpd_xdp_vrrp_packets_total 400"));
        assert!(text.contains(r#"xvrrpd_sync_group_state{group="G"} 2"#));
        // One HELP and TYPE per family, counters named _total.
        for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = l.split_whitespace().nth(2).unwrap();
            assert_eq!(
                text.matches(&format!("# TYPE {name} ")).count(),
                1,
                "{name}"
            );
            if l.ends_with(" counter") {
                assert!(name.ends_with("_total"), "{name}");
            }
        }
        // No reload yet: no reload outcome to show.
        assert!(!text.contains("xvrrpd_config_last_reload_successful"));
    }

    #[test]
    fn label_values_are_escaped() {
        let mut r = sample();
        r.instances[0].name = "a\"b\\c\nd".into();
        let text = render(&r);
        assert!(text.contains(r#"iname="a\"b\\c\nd""#), "{text}");
    }

    #[test]
    fn http_answers_metrics_and_refuses_the_rest() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (handle, mut requests) = ReportHandle::new();
            tokio::spawn(async move {
                while let Some(reply) = requests.recv().await {
                    let _ = reply.send(sample());
                }
            });
            let mut server = MetricsServer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = server.local_addr();
            let task = server.serve(handle).unwrap();
            let get = |req: &'static str| async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                s.write_all(req.as_bytes()).await.unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).await.unwrap();
                out
            };
            let ok = get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
            assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
            assert!(ok.contains(&format!("Content-Type: {CONTENT_TYPE}\r\n")));
            let body = ok.split("\r\n\r\n").nth(1).unwrap();
            assert!(ok.contains(&format!("Content-Length: {}\r\n", body.len())));
            assert_eq!(body, render(&sample()));
            assert!(get("GET /nope HTTP/1.1\r\n\r\n")
                .await
                .starts_with("HTTP/1.1 404"));
            assert!(get("POST /metrics HTTP/1.1\r\n\r\n")
                .await
                .starts_with("HTTP/1.1 405"));
            let head = get("HEAD /metrics HTTP/1.0\r\n\r\n").await;
            assert!(
                head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"),
                "{head}"
            );
            task.abort();
        });
    }
}
