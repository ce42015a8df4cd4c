//! The `gpu` probe: picks a backend at the first reading and reads through it.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::backend::{to_reading, GpuBackend};
use super::{jetson, nvml};
use crate::core::check::{GpuChoice, HostRoots};
use crate::core::metric::{Metrics, Reading};
use crate::probe::api::{Context, Probe};
use crate::sys::blocking::Blocking;

/// Opens the NVML backend for a device index, or says why not. The live one is
/// [`nvml::open_live`]; tests pass one that replays recorded NVML answers.
pub type NvmlOpener = Arc<dyn Fn(u32) -> Result<Box<dyn GpuBackend>, String> + Send + Sync>;

/// Picks a backend. `Err` says why none could be used, naming each backend tried. Blocks.
pub fn select(
    choice: GpuChoice,
    device: u32,
    roots: &HostRoots,
    open_nvml: &NvmlOpener,
) -> Result<Box<dyn GpuBackend>, String> {
    let jetson =
        || jetson::JetsonBackend::discover(roots).map(|b| Box::new(b) as Box<dyn GpuBackend>);
    match choice {
        GpuChoice::Nvml => open_nvml(device).map_err(|e| format!("NVML: {e}")),
        GpuChoice::Jetson => jetson().map_err(|e| format!("Jetson: {e}")),
        GpuChoice::None => Err("backend = \"none\"".into()),
        GpuChoice::Auto => match open_nvml(device) {
            Ok(b) => Ok(b),
            Err(nvml_why) => jetson().map_err(|jetson_why| {
                format!("no GPU found: NVML: {nvml_why}; Jetson: {jetson_why}")
            }),
        },
    }
}

/// Picks the backend once and reads through it.
struct Selector {
    choice: GpuChoice,
    device: u32,
    roots: HostRoots,
    open_nvml: NvmlOpener,
    backend: Option<Box<dyn GpuBackend>>,
    /// The last reason no backend could be used, so it is logged once, not every reading.
    last_failure: Option<String>,
}

impl Selector {
    fn read(&mut self) -> Reading {
        if self.choice == GpuChoice::None {
            return Reading::metrics("not watching a GPU (backend = \"none\")", Metrics::new());
        }
        if self.backend.is_none() {
            match select(self.choice, self.device, &self.roots, &self.open_nvml) {
                Ok(b) => {
                    tracing::info!(vigil_event = "gpu-backend", "gpu: reading {}", b.describe());
                    self.backend = Some(b);
                    self.last_failure = None;
                }
                Err(why) => {
                    if self.last_failure.as_deref() != Some(why.as_str()) {
                        tracing::debug!("gpu: no backend: {why}");
                        self.last_failure = Some(why.clone());
                    }
                    return Reading::Unknown(why);
                }
            }
        }
        let backend = self.backend.as_mut().expect("set above");
        match backend.read() {
            Ok(s) => to_reading(backend.name(), &s),
            Err(e) => Reading::Unknown(format!("{}: {e}", backend.name())),
        }
    }
}

/// The probe.
pub struct GpuProbe {
    selector: Arc<Mutex<Selector>>,
    reader: Blocking<Reading>,
}

impl GpuProbe {
    /// Builds the probe for `backend` and NVML device index `device`, reading sysfs and
    /// procfs under `ctx.roots`.
    pub fn new(backend: GpuChoice, device: u32, ctx: &Context) -> Self {
        Self::with_nvml(backend, device, ctx, Arc::new(nvml::open_live))
    }

    /// As [`GpuProbe::new`], with NVML opened by `open_nvml` (tests replay recorded NVML
    /// answers through it).
    pub fn with_nvml(choice: GpuChoice, device: u32, ctx: &Context, open_nvml: NvmlOpener) -> Self {
        GpuProbe {
            selector: Arc::new(Mutex::new(Selector {
                choice,
                device,
                roots: ctx.roots.clone(),
                open_nvml,
                backend: None,
                last_failure: None,
            })),
            reader: Default::default(),
        }
    }
}

#[async_trait]
impl Probe for GpuProbe {
    async fn read(&mut self) -> Reading {
        let selector = self.selector.clone();
        let r = self
            .reader
            .run(move || match selector.lock() {
                Ok(mut s) => s.read(),
                Err(_) => Reading::Unknown("the GPU reader failed earlier (panicked)".into()),
            })
            .await;
        r.unwrap_or_else(Reading::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn backend_none_watches_nothing() {
        let mut p = GpuProbe::new(GpuChoice::None, 0, &Context::default());
        let Reading::Value {
            metrics, detail, ..
        } = p.read().await
        else {
            panic!()
        };
        assert!(metrics.is_empty());
        assert!(detail.contains("backend = \"none\""), "{detail}");
    }
}
