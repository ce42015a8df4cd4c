//! `systemd`: one unit over org.freedesktop.systemd1.
//!
//! Every check of this kind in the daemon shares one bus connection per address (the
//! system bus unless [`Context::systemd_bus`] names another), on which vigild calls
//! `Manager.Subscribe()` once. Each probe keeps a task that listens to its unit's
//! `PropertiesChanged` (and the manager's `Reloading`, after which a unit may have appeared
//! or vanished) and wakes the check at once, so a failure is read when it happens; the
//! check's `every` is only the safety net. A lost bus makes the check `unknown` and the
//! connection is rebuilt with back-off.
//!
//! Status: `failed` → crit; `activating`, `deactivating`, `reloading`, `refreshing`,
//! `maintenance` → warn; `active` → ok; `inactive` → crit when the last run's `Result` was
//! not `success`, else warn (a unit someone watches is expected to run); a unit that does
//! not exist (`LoadState=not-found`), is masked, or cannot be loaded → crit.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use zbus::proxy::CacheProperties;

use super::api::{Context, Probe};
use crate::core::health::Status;
use crate::core::metric::{Metrics, Reading};
use crate::sys::systemd::{
    is_loss, ManagerProxy, SdServiceProxy, SdUnitProxy, SystemdBus, SYSTEMD,
};

/// What one reading found out about a unit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnitProps {
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    /// The LoadError message, when there is one.
    pub load_error: Option<String>,
    /// `Result` of the type interface (`success`, `exit-code`, `signal`, …), where it has one.
    pub result: Option<String>,
    pub n_restarts: Option<u32>,
    pub exec_main_status: Option<i32>,
    /// CLD_EXITED (1), CLD_KILLED (2), CLD_DUMPED (3); 0 before any run.
    pub exec_main_code: Option<i32>,
    pub memory_bytes: Option<u64>,
    pub tasks: Option<u64>,
}

/// Decides a unit's status and a one-line detail from its properties.
pub fn assess(unit: &str, p: &UnitProps) -> (Status, String) {
    match p.load_state.as_str() {
        "not-found" => {
            return (
                Status::Crit,
                format!(
                    "{unit} does not exist (LoadState=not-found): no unit file of that name; \
                     install it or fix `unit` in the policy"
                ),
            )
        }
        "masked" => {
            return (
                Status::Crit,
                format!("{unit} is masked: it cannot run; `systemctl unmask {unit}`"),
            )
        }
        "error" | "bad-setting" => {
            let why = p
                .load_error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            return (
                Status::Crit,
                format!(
                    "{unit} cannot be loaded (LoadState={}){why}; see `systemctl status {unit}`",
                    p.load_state
                ),
            );
        }
        _ => {}
    }
    let mut facts = Vec::new();
    if let Some(r) = &p.result {
        facts.push(format!("Result={r}"));
    }
    if let (Some(st), Some(code)) = (p.exec_main_status, p.exec_main_code) {
        match code {
            2 | 3 => facts.push(format!(
                "ExecMainStatus={st} (killed by signal {}{})",
                signal_name(st),
                if code == 3 { ", core dumped" } else { "" }
            )),
            1 => facts.push(format!("ExecMainStatus={st}")),
            _ => {}
        }
    }
    if let Some(n) = p.n_restarts {
        facts.push(format!("{n} restart{}", if n == 1 { "" } else { "s" }));
    }
    let facts = if facts.is_empty() {
        String::new()
    } else {
        format!(" ({})", facts.join(", "))
    };
    let state = if p.sub_state.is_empty() || p.sub_state == p.active_state {
        p.active_state.clone()
    } else {
        format!("{} ({})", p.active_state, p.sub_state)
    };
    let failed_result = p.result.as_deref().is_some_and(|r| r != "success");
    let status = match p.active_state.as_str() {
        "active" => Status::Ok,
        "failed" => Status::Crit,
        "activating" | "deactivating" | "reloading" | "refreshing" | "maintenance" => Status::Warn,
        "inactive" if failed_result => Status::Crit,
        "inactive" => {
            return (
                Status::Warn,
                format!("{unit}: inactive (not running){facts}"),
            )
        }
        _ => Status::Warn,
    };
    (status, format!("{unit}: {state}{facts}"))
}

fn signal_name(n: i32) -> String {
    let name = match n {
        1 => "HUP",
        2 => "INT",
        3 => "QUIT",
        4 => "ILL",
        6 => "ABRT",
        7 => "BUS",
        8 => "FPE",
        9 => "KILL",
        10 => "USR1",
        11 => "SEGV",
        12 => "USR2",
        13 => "PIPE",
        14 => "ALRM",
        15 => "TERM",
        _ => return n.to_string(),
    };
    format!("SIG{name}")
}

/// The metrics of a reading.
fn metrics_of(p: &UnitProps) -> Metrics {
    let mut m = Metrics::new();
    let active = matches!(p.active_state.as_str(), "active" | "reloading");
    m.insert("active".into(), if active { 1.0 } else { 0.0 });
    if let Some(n) = p.n_restarts {
        m.insert("n_restarts".into(), n as f64);
    }
    if let Some(s) = p.exec_main_status {
        m.insert("exec_main_status".into(), s as f64);
    }
    if let Some(b) = p.memory_bytes {
        m.insert("memory_bytes".into(), b as f64);
    }
    if let Some(t) = p.tasks {
        m.insert("tasks".into(), t as f64);
    }
    m
}

/// The object path systemd gives a unit (sd_bus_path_encode): every byte that is not
/// alphanumeric, and a leading digit, becomes `_XX`.
pub fn unit_path(unit: &str) -> String {
    let mut out = String::from("/org/freedesktop/systemd1/unit/");
    if unit.is_empty() {
        out.push('_');
        return out;
    }
    for (i, b) in unit.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()) {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

/// The D-Bus interface of a unit's type, which holds `Result` and the cgroup figures.
fn type_interface(unit: &str) -> Option<&'static str> {
    let suffix = unit.rsplit_once('.').map(|(_, s)| s)?;
    Some(match suffix {
        "service" => "org.freedesktop.systemd1.Service",
        "socket" => "org.freedesktop.systemd1.Socket",
        "mount" => "org.freedesktop.systemd1.Mount",
        "swap" => "org.freedesktop.systemd1.Swap",
        "timer" => "org.freedesktop.systemd1.Timer",
        "path" => "org.freedesktop.systemd1.Path",
        "scope" => "org.freedesktop.systemd1.Scope",
        "automount" => "org.freedesktop.systemd1.Automount",
        "slice" => "org.freedesktop.systemd1.Slice",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// The probe.

/// Watches one unit.
pub struct SystemdProbe {
    unit: String,
    shared: Arc<SystemdBus>,
    wake: Arc<Notify>,
    watcher: Option<AbortHandle>,
}

impl SystemdProbe {
    /// Builds the probe; inside a tokio runtime it also starts the task that wakes the
    /// check on the unit's signals.
    pub fn new(unit: String, ctx: &Context) -> Self {
        let shared = ctx.connections.systemd.get_or_make(&ctx.systemd_bus, || {
            Arc::new(SystemdBus::new(ctx.systemd_bus.clone()))
        });
        let wake = Arc::new(Notify::new());
        let watcher = tokio::runtime::Handle::try_current().ok().map(|h| {
            h.spawn(watch(unit.clone(), shared.clone(), wake.clone()))
                .abort_handle()
        });
        SystemdProbe {
            unit,
            shared,
            wake,
            watcher,
        }
    }

    /// Reads the unit's properties: `LoadUnit`, then the Unit, Service and type-interface
    /// properties concurrently (two round trips through the bus in all).
    async fn read_props(&self, conn: &zbus::Connection) -> Result<UnitProps, zbus::Error> {
        let manager = ManagerProxy::builder(conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        let path = manager.load_unit(&self.unit).await?;
        let unit = SdUnitProxy::builder(conn)
            .path(path.clone())
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        let iface = type_interface(&self.unit);
        let is_service = iface == Some("org.freedesktop.systemd1.Service");
        let svc = SdServiceProxy::builder(conn)
            .path(path.clone())
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        let props = zbus::fdo::PropertiesProxy::builder(conn)
            .destination(SYSTEMD)
            .path(path)
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        let unit_part =
            async { tokio::try_join!(unit.load_state(), unit.active_state(), unit.sub_state()) };
        let service_part = async {
            if !is_service {
                return None;
            }
            Some(tokio::try_join!(
                svc.result(),
                svc.n_restarts(),
                svc.exec_main_status(),
                svc.exec_main_code()
            ))
        };
        // `Result` of other types, and the cgroup figures.
        let type_part = async {
            let name = zbus::names::InterfaceName::from_static_str(iface?).ok()?;
            Some(props.get_all(name).await.map_err(zbus::Error::from))
        };
        let (unit_part, service_part, type_part) = tokio::join!(unit_part, service_part, type_part);
        let (load_state, active_state, sub_state) = unit_part?;
        let mut p = UnitProps {
            load_state,
            active_state,
            sub_state,
            ..Default::default()
        };
        if p.load_state != "loaded" {
            if let Ok((_, msg)) = unit.load_error().await {
                if !msg.is_empty() {
                    p.load_error = Some(msg);
                }
            }
            return Ok(p);
        }
        match service_part {
            Some(Ok((result, n, status, code))) => {
                p.result = Some(result);
                p.n_restarts = Some(n);
                p.exec_main_status = Some(status);
                p.exec_main_code = Some(code);
            }
            Some(Err(e)) if is_loss(&e) => return Err(e),
            _ => {}
        }
        match type_part {
            Some(Ok(all)) => {
                if p.result.is_none() {
                    p.result = all
                        .get("Result")
                        .and_then(|v| String::try_from(v.try_clone().ok()?).ok());
                }
                let num = |k: &str| {
                    all.get(k)
                        .and_then(|v| u64::try_from(v.try_clone().ok()?).ok())
                        .filter(|n| *n != u64::MAX)
                };
                p.memory_bytes = num("MemoryCurrent");
                p.tasks = num("TasksCurrent");
            }
            Some(Err(e)) if is_loss(&e) => return Err(e),
            _ => {}
        }
        Ok(p)
    }
}

impl Drop for SystemdProbe {
    fn drop(&mut self) {
        if let Some(w) = &self.watcher {
            w.abort();
        }
    }
}

#[async_trait]
impl Probe for SystemdProbe {
    async fn read(&mut self) -> Reading {
        let (generation, conn) = match self.shared.get().await {
            Ok(c) => c,
            Err(e) => return Reading::Unknown(e),
        };
        match self.read_props(&conn).await {
            Ok(p) => {
                let (status, detail) = assess(&self.unit, &p);
                Reading::Value {
                    status: Some(status),
                    detail,
                    metrics: metrics_of(&p),
                }
            }
            Err(e) if is_loss(&e) => {
                Reading::Unknown(self.shared.lost(generation, e.to_string()).await)
            }
            Err(e) => Reading::Unknown(format!(
                "{SYSTEMD} gave no state for {}: {e}; check the unit name",
                self.unit
            )),
        }
    }

    fn wake(&self) -> Option<Arc<Notify>> {
        Some(self.wake.clone())
    }
}

/// Wakes the check whenever the unit's properties change or systemd reloads; follows the
/// shared connection across losses.
async fn watch(unit: String, shared: Arc<SystemdBus>, wake: Arc<Notify>) {
    let path = unit_path(&unit);
    loop {
        let (generation, conn) = match shared.get().await {
            Ok(c) => c,
            Err(_) => {
                tokio::time::sleep(shared.retry_in().await.max(Duration::from_millis(50))).await;
                continue;
            }
        };
        let streams = async {
            let props = zbus::fdo::PropertiesProxy::builder(&conn)
                .destination(SYSTEMD)
                .path(path.as_str())
                .cache_properties(CacheProperties::No)
                .build()
                .await?;
            let changed = props.receive_properties_changed().await?;
            let manager = ManagerProxy::builder(&conn)
                .cache_properties(CacheProperties::No)
                .build()
                .await?;
            let reloading = manager.receive_reloading().await?;
            Ok::<_, zbus::Error>((changed, reloading))
        }
        .await;
        let (mut changed, mut reloading) = match streams {
            Ok(s) => s,
            Err(e) => {
                if is_loss(&e) {
                    shared.lost(generation, e.to_string()).await;
                } else {
                    tracing::warn!("systemd probe: cannot watch {unit}: {e}");
                }
                wake.notify_one();
                tokio::time::sleep(shared.retry_in().await.max(Duration::from_millis(250))).await;
                continue;
            }
        };
        // Whatever happened while nobody listened: read it now.
        wake.notify_one();
        loop {
            tokio::select! {
                s = changed.next() => match s {
                    Some(_) => wake.notify_one(),
                    None => break,
                },
                r = reloading.next() => match r {
                    Some(_) => wake.notify_one(),
                    None => break,
                },
            }
        }
        // The streams end when the connection does.
        shared
            .lost(generation, "the connection was closed".into())
            .await;
        wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(active: &str, sub: &str, result: &str) -> UnitProps {
        UnitProps {
            load_state: "loaded".into(),
            active_state: active.into(),
            sub_state: sub.into(),
            result: Some(result.into()),
            n_restarts: Some(0),
            exec_main_status: Some(0),
            exec_main_code: Some(0),
            ..Default::default()
        }
    }

    #[test]
    fn paths_are_escaped_as_systemd_does() {
        assert_eq!(
            unit_path("docker.service"),
            "/org/freedesktop/systemd1/unit/docker_2eservice"
        );
        assert_eq!(
            unit_path("getty@tty1.service"),
            "/org/freedesktop/systemd1/unit/getty_40tty1_2eservice"
        );
        assert_eq!(
            unit_path("1x-y.mount"),
            "/org/freedesktop/systemd1/unit/_31x_2dy_2emount"
        );
    }

    #[test]
    fn states_map_to_statuses() {
        let (s, d) = assess("a.service", &svc("active", "running", "success"));
        assert_eq!(s, Status::Ok);
        assert_eq!(
            d,
            "a.service: active (running) (Result=success, 0 restarts)"
        );
        let mut p = svc("failed", "failed", "exit-code");
        p.exec_main_status = Some(1);
        p.exec_main_code = Some(1);
        p.n_restarts = Some(3);
        let (s, d) = assess("docker.service", &p);
        assert_eq!(s, Status::Crit);
        assert_eq!(
            d,
            "docker.service: failed (Result=exit-code, ExecMainStatus=1, 3 restarts)"
        );
        let mut p = svc("failed", "failed", "signal");
        p.exec_main_status = Some(9);
        p.exec_main_code = Some(2);
        assert!(assess("x.service", &p)
            .1
            .contains("killed by signal SIGKILL"));
        for a in ["activating", "deactivating", "reloading"] {
            assert_eq!(assess("x", &svc(a, "", "success")).0, Status::Warn, "{a}");
        }
        let (s, d) = assess("x.service", &svc("inactive", "dead", "success"));
        assert_eq!(s, Status::Warn);
        assert!(d.contains("inactive (not running)"), "{d}");
        assert_eq!(
            assess("x.service", &svc("inactive", "dead", "exit-code")).0,
            Status::Crit
        );
    }

    #[test]
    fn missing_and_broken_units_are_crit_and_say_why() {
        let p = UnitProps {
            load_state: "not-found".into(),
            active_state: "inactive".into(),
            sub_state: "dead".into(),
            ..Default::default()
        };
        let (s, d) = assess("nosuch.service", &p);
        assert_eq!(s, Status::Crit);
        assert!(d.contains("nosuch.service does not exist"), "{d}");
        let p = UnitProps {
            load_state: "bad-setting".into(),
            load_error: Some("Unit x.service has a bad unit file setting.".into()),
            ..Default::default()
        };
        let (s, d) = assess("x.service", &p);
        assert_eq!(s, Status::Crit);
        assert!(d.contains("bad unit file setting"), "{d}");
    }

    #[test]
    fn metrics_follow_properties() {
        let mut p = svc("active", "running", "success");
        p.n_restarts = Some(4);
        p.memory_bytes = Some(1024);
        let m = metrics_of(&p);
        assert_eq!(m["active"], 1.0);
        assert_eq!(m["n_restarts"], 4.0);
        assert_eq!(m["memory_bytes"], 1024.0);
        assert!(!m.contains_key("tasks"));
        for k in m.keys() {
            assert!(
                crate::core::probe_kind::ProbeKind::Systemd
                    .metric(k)
                    .is_some(),
                "{k} not in the catalogue"
            );
        }
    }

    #[tokio::test]
    async fn no_bus_is_unknown_and_names_it() {
        let ctx = Context {
            systemd_bus: Some("unix:path=/nonexistent/vigil-test-bus".into()),
            ..Default::default()
        };
        let mut p = SystemdProbe::new("x.service".into(), &ctx);
        match p.read().await {
            Reading::Unknown(why) => {
                assert!(why.contains("/nonexistent/vigil-test-bus"), "{why}");
                assert!(why.contains("reconnecting"), "{why}");
            }
            r => panic!("{r:?}"),
        }
    }
}
