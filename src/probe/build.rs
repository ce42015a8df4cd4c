//! Builds the probe for a check from its typed settings.

use crate::core::check::{CheckSpec, ProbeParams};
use crate::probe::api::{Context, Probe};
use crate::probe::{
    container, disk, exec, gpu, http, memory, ollama, smart, systemd, tcp, thermal,
};

/// Builds the probe for a check.
pub fn build(spec: &CheckSpec, ctx: &Context) -> Box<dyn Probe> {
    match &spec.params {
        ProbeParams::Disk { path } => Box::new(disk::DiskProbe::new(path.clone())),
        ProbeParams::Memory => Box::new(memory::MemoryProbe::new(ctx.roots.proc.clone())),
        ProbeParams::Thermal { sensors } => Box::new(thermal::ThermalProbe::new(
            ctx.roots.sys.clone(),
            sensors.clone(),
        )),
        ProbeParams::Smart {
            device,
            dir,
            refresh,
        } => Box::new(smart::SmartProbe::new(
            device.clone(),
            dir.clone(),
            *refresh,
            spec.every,
            spec.timeout,
            ctx,
        )),
        ProbeParams::Systemd { unit } => Box::new(systemd::SystemdProbe::new(unit.clone(), ctx)),
        ProbeParams::Container { container } => {
            Box::new(container::ContainerProbe::new(container.clone(), ctx))
        }
        ProbeParams::Containers { patterns } => {
            Box::new(container::ContainersProbe::new(patterns.clone(), ctx))
        }
        ProbeParams::Ollama { url, probe_model } => Box::new(ollama::OllamaProbe::new(
            url.clone(),
            probe_model.clone(),
            spec.timeout,
        )),
        ProbeParams::Gpu { backend, device } => {
            Box::new(gpu::GpuProbe::new(*backend, *device, ctx))
        }
        ProbeParams::Http { url, expect_status } => Box::new(http::HttpProbe::new(
            url.clone(),
            expect_status.clone(),
            spec.timeout,
        )),
        ProbeParams::Tcp { address } => Box::new(tcp::TcpProbe::new(address.clone(), spec.timeout)),
        ProbeParams::Exec { command } => {
            Box::new(exec::ExecProbe::new(command.clone(), spec.timeout))
        }
    }
}
