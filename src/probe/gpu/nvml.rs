//! The NVML backend.
//!
//! What NVML answered for one reading is a plain [`NvmlAnswers`] (one [`Answer`] per NVML
//! call); [`NvmlBackend`] turns answers into a [`GpuSample`]. The answers come from an
//! [`NvmlSource`]: [`LiveNvml`] asks the driver through nvml-wrapper (the library,
//! `libnvidia-ml.so.1`, is loaded at run time, so a host without the driver gets an error,
//! not a crash); tests replay answers recorded as JSON.
//!
//! XID errors come from NVML's event API: an event set registered for
//! `CRITICAL_XID_ERROR` is polled with a 0 ms wait at each reading, and the events seen
//! since the backend started are counted.

use std::sync::Mutex;

use nvml_wrapper::bitmasks::device::ThrottleReasons;
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enum_wrappers::device::{Clock, EccCounter, MemoryError, TemperatureSensor};
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{EventSet, Nvml};
use serde::{Deserialize, Serialize};

use super::backend::{GpuBackend, GpuError, GpuSample};

/// One NVML call's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer<T> {
    Ok(T),
    /// `NVML_ERROR_NOT_SUPPORTED`: the device does not have this; the metric is absent.
    NotSupported,
    /// Any other error, as NVML's text.
    Error(String),
}

impl<T> Answer<T> {
    fn from_result(r: Result<T, NvmlError>) -> Answer<T> {
        match r {
            Ok(v) => Answer::Ok(v),
            Err(NvmlError::NotSupported) => Answer::NotSupported,
            Err(e) => Answer::Error(e.to_string()),
        }
    }
}

/// `nvmlDeviceGetMemoryInfo_v2`, bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryAnswer {
    pub total: u64,
    pub used: u64,
    pub free: u64,
    #[serde(default)]
    pub reserved: u64,
}

/// `nvmlDeviceGetUtilizationRates`, percent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UtilizationAnswer {
    pub gpu: u32,
    pub memory: u32,
}

/// What NVML answered for one reading of one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NvmlAnswers {
    /// `nvmlDeviceGetName`.
    pub name: Answer<String>,
    /// `nvmlDeviceGetMemoryInfo_v2`.
    pub memory_info: Answer<MemoryAnswer>,
    /// `nvmlDeviceGetUtilizationRates`.
    pub utilization_rates: Answer<UtilizationAnswer>,
    /// `nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU)`, °C.
    pub temperature_gpu: Answer<u32>,
    /// `nvmlDeviceGetPowerUsage`, milliwatts.
    pub power_usage_mw: Answer<u32>,
    /// `nvmlDeviceGetClockInfo(NVML_CLOCK_GRAPHICS)`, MHz.
    pub clock_graphics_mhz: Answer<u32>,
    /// `nvmlDeviceGetTotalEccErrors(UNCORRECTED, VOLATILE)`.
    pub ecc_uncorrected_volatile: Answer<u64>,
    /// `nvmlDeviceGetCurrentClocksThrottleReasons`, the raw bitmask.
    pub throttle_reasons: Answer<u64>,
    /// XID codes of the `CRITICAL_XID_ERROR` events `nvmlEventSetWait_v2` delivered since
    /// the previous reading; `NotSupported` when the device has no such events.
    pub xid_events: Answer<Vec<u64>>,
}

/// Where NVML answers come from.
pub trait NvmlSource: Send {
    /// Asks every question once. Blocks.
    fn read(&mut self) -> NvmlAnswers;
}

/// Names of throttle reasons, and whether each is a slowdown worth alarming on.
const THROTTLE_NAMES: &[(ThrottleReasons, &str, bool)] = &[
    (ThrottleReasons::GPU_IDLE, "gpu idle", false),
    (
        ThrottleReasons::APPLICATIONS_CLOCKS_SETTING,
        "applications clocks setting",
        false,
    ),
    (ThrottleReasons::SW_POWER_CAP, "sw power cap", false),
    (ThrottleReasons::HW_SLOWDOWN, "hw slowdown", true),
    (ThrottleReasons::SYNC_BOOST, "sync boost", false),
    (
        ThrottleReasons::SW_THERMAL_SLOWDOWN,
        "sw thermal slowdown",
        true,
    ),
    (
        ThrottleReasons::HW_THERMAL_SLOWDOWN,
        "hw thermal slowdown",
        true,
    ),
    (
        ThrottleReasons::HW_POWER_BRAKE_SLOWDOWN,
        "hw power brake slowdown",
        true,
    ),
    (
        ThrottleReasons::DISPLAY_CLOCK_SETTING,
        "display clock setting",
        false,
    ),
];

/// NVML answers turned into samples, counting XID events across readings.
pub struct NvmlBackend<S> {
    source: S,
    /// The answers `open` read, used by the first reading (their XID events count).
    pending: Option<NvmlAnswers>,
    /// The device's name as NVML gave it at the start.
    device: String,
    xid_total: u64,
    last_xid: Option<u64>,
}

impl<S: NvmlSource> NvmlBackend<S> {
    /// Reads once and keeps the source only if the device answers memory info: a Jetson's
    /// NVML finds the GPU but answers NOT_SUPPORTED to everything, and its GPU is read from
    /// sysfs instead.
    pub fn open(mut source: S) -> Result<Self, String> {
        let first = source.read();
        let name = match &first.name {
            Answer::Ok(n) => n.clone(),
            _ => "the device".to_string(),
        };
        match &first.memory_info {
            Answer::Ok(_) => {}
            Answer::NotSupported => {
                return Err(format!(
                    "{name} answers NOT_SUPPORTED to memory info (on a Jetson, the GPU is read from sysfs)"
                ))
            }
            Answer::Error(e) => return Err(format!("{name}: memory info failed: {e}")),
        }
        Ok(NvmlBackend {
            source,
            pending: Some(first),
            device: name,
            xid_total: 0,
            last_xid: None,
        })
    }

    /// Turns one set of answers into a sample. An unreadable memory info is an error (the
    /// check is `unknown`); any other metric NVML does not support is absent.
    pub fn sample(&mut self, a: NvmlAnswers) -> Result<GpuSample, GpuError> {
        let mut s = GpuSample {
            name: match a.name {
                Answer::Ok(n) => n,
                _ => "NVIDIA GPU".into(),
            },
            ..Default::default()
        };
        match a.memory_info {
            Answer::Ok(m) => {
                s.memory_used_bytes = m.used;
                s.memory_total_bytes = m.total;
            }
            Answer::NotSupported => {
                return Err(GpuError(format!(
                    "{} answers NOT_SUPPORTED to memory info",
                    s.name
                )))
            }
            Answer::Error(e) => {
                return Err(GpuError(format!(
                    "{}: memory info failed: {e} (is the GPU still on the bus? see `nvidia-smi`)",
                    s.name
                )))
            }
        }
        let mut notes = Vec::new();
        fn take<T>(a: Answer<T>, what: &str, notes: &mut Vec<String>) -> Option<T> {
            match a {
                Answer::Ok(v) => Some(v),
                Answer::NotSupported => None,
                Answer::Error(e) => {
                    notes.push(format!("{what}: {e}"));
                    None
                }
            }
        }
        s.utilization =
            take(a.utilization_rates, "utilization", &mut notes).map(|u| f64::from(u.gpu));
        s.temperature = take(a.temperature_gpu, "temperature", &mut notes).map(f64::from);
        s.power_w = take(a.power_usage_mw, "power", &mut notes).map(|mw| f64::from(mw) / 1000.0);
        s.freq_mhz = take(a.clock_graphics_mhz, "clock", &mut notes).map(f64::from);
        s.ecc_errors = take(a.ecc_uncorrected_volatile, "ECC errors", &mut notes);
        if let Some(bits) = take(a.throttle_reasons, "throttle reasons", &mut notes) {
            let r = ThrottleReasons::from_bits_truncate(bits);
            let active: Vec<_> = THROTTLE_NAMES
                .iter()
                .filter(|(flag, _, _)| r.contains(*flag))
                .collect();
            s.throttled = Some(active.iter().any(|(_, _, bad)| *bad));
            s.throttle_reasons = Some(active.iter().map(|(_, name, _)| *name).collect());
        }
        if let Some(xids) = take(a.xid_events, "XID events", &mut notes) {
            self.xid_total += xids.len() as u64;
            if let Some(&last) = xids.last() {
                self.last_xid = Some(last);
            }
            s.xid_errors = Some(self.xid_total);
            s.last_xid = self.last_xid;
        }
        s.notes = notes;
        Ok(s)
    }
}

impl<S: NvmlSource> GpuBackend for NvmlBackend<S> {
    fn name(&self) -> &'static str {
        "nvml"
    }

    fn describe(&self) -> String {
        format!("{} through NVML", self.device)
    }

    fn read(&mut self) -> Result<GpuSample, GpuError> {
        let answers = match self.pending.take() {
            Some(a) => a,
            None => self.source.read(),
        };
        self.sample(answers)
    }
}

/// Says what an NVML error means for an operator.
pub fn describe(e: &NvmlError) -> String {
    match e {
        NvmlError::LibloadingError(err) => format!(
            "cannot load libnvidia-ml.so.1 (no NVIDIA driver installed?): {err}"
        ),
        NvmlError::DriverNotLoaded => {
            "the NVIDIA driver is not loaded (is the nvidia kernel module in? `lsmod | grep nvidia`)"
                .into()
        }
        NvmlError::NoPermission => {
            "no permission to talk to the NVIDIA driver (check /dev/nvidia* permissions)".into()
        }
        other => other.to_string(),
    }
}

/// The process's one NVML handle: NVIDIA asks for one initialisation per process, and
/// devices and event sets borrow it for as long as they live. A failed init is not
/// remembered, so a driver that loads later is found.
static NVML: Mutex<Option<&'static Nvml>> = Mutex::new(None);

fn shared_nvml() -> Result<&'static Nvml, String> {
    let mut slot = NVML.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(n) = *slot {
        return Ok(n);
    }
    let n: &'static Nvml = Box::leak(Box::new(Nvml::init().map_err(|e| describe(&e))?));
    *slot = Some(n);
    Ok(n)
}

/// Answers from the driver for one device index.
pub struct LiveNvml {
    nvml: &'static Nvml,
    index: u32,
    /// Registered for critical XID events; `Err` says why not (not supported, …).
    events: Result<EventSet<'static>, Answer<Vec<u64>>>,
}

impl LiveNvml {
    /// Initialises NVML (once per process) and finds device `index`.
    pub fn new(index: u32) -> Result<LiveNvml, String> {
        let nvml = shared_nvml()?;
        let count = nvml.device_count().map_err(|e| describe(&e))?;
        let device = nvml.device_by_index(index).map_err(|e| {
            format!(
                "no device {index} ({count} NVIDIA devices found; `device` counts from 0): {}",
                describe(&e)
            )
        })?;
        let events = match device.supported_event_types() {
            Ok(t) if t.contains(EventTypes::CRITICAL_XID_ERROR) => nvml
                .create_event_set()
                .map_err(|e| Answer::Error(e.to_string()))
                .and_then(|set| {
                    device
                        .register_events(EventTypes::CRITICAL_XID_ERROR, set)
                        .map_err(|e| Answer::Error(e.to_string()))
                }),
            Ok(_) | Err(NvmlError::NotSupported) => Err(Answer::NotSupported),
            Err(e) => Err(Answer::Error(e.to_string())),
        };
        Ok(LiveNvml {
            nvml,
            index,
            events,
        })
    }

    /// Drains the XID events delivered since the last call, waiting 0 ms.
    fn drain_xids(&self) -> Answer<Vec<u64>> {
        let set = match &self.events {
            Ok(set) => set,
            Err(why) => return why.clone(),
        };
        let mut xids = Vec::new();
        // A bound, in case the driver keeps delivering: the rest come next reading.
        for _ in 0..1000 {
            match set.wait(0) {
                Ok(ev) => {
                    if ev.event_type.contains(EventTypes::CRITICAL_XID_ERROR) {
                        xids.push(match ev.event_data {
                            Some(XidError::Value(v)) => v,
                            _ => 0,
                        });
                    }
                }
                Err(NvmlError::Timeout) => break,
                Err(e) => return Answer::Error(e.to_string()),
            }
        }
        Answer::Ok(xids)
    }
}

impl NvmlSource for LiveNvml {
    fn read(&mut self) -> NvmlAnswers {
        let device = match self.nvml.device_by_index(self.index) {
            Ok(d) => d,
            Err(e) => {
                let why = describe(&e);
                return NvmlAnswers {
                    name: Answer::Error(why.clone()),
                    memory_info: Answer::Error(why.clone()),
                    utilization_rates: Answer::Error(why.clone()),
                    temperature_gpu: Answer::Error(why.clone()),
                    power_usage_mw: Answer::Error(why.clone()),
                    clock_graphics_mhz: Answer::Error(why.clone()),
                    ecc_uncorrected_volatile: Answer::Error(why.clone()),
                    throttle_reasons: Answer::Error(why.clone()),
                    xid_events: Answer::Error(why),
                };
            }
        };
        NvmlAnswers {
            name: Answer::from_result(device.name()),
            memory_info: Answer::from_result(device.memory_info().map(|m| MemoryAnswer {
                total: m.total,
                used: m.used,
                free: m.free,
                reserved: m.reserved,
            })),
            utilization_rates: Answer::from_result(device.utilization_rates().map(|u| {
                UtilizationAnswer {
                    gpu: u.gpu,
                    memory: u.memory,
                }
            })),
            temperature_gpu: Answer::from_result(device.temperature(TemperatureSensor::Gpu)),
            power_usage_mw: Answer::from_result(device.power_usage()),
            clock_graphics_mhz: Answer::from_result(device.clock_info(Clock::Graphics)),
            ecc_uncorrected_volatile: Answer::from_result(
                device.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile),
            ),
            throttle_reasons: Answer::from_result(
                device.current_throttle_reasons().map(|r| r.bits()),
            ),
            xid_events: self.drain_xids(),
        }
    }
}

/// Opens the live NVML backend for device `index`, or says why not (no library, no
/// driver, no such device, memory info not supported).
pub fn open_live(index: u32) -> Result<Box<dyn GpuBackend>, String> {
    let source = LiveNvml::new(index)?;
    Ok(Box::new(NvmlBackend::open(source)?))
}
