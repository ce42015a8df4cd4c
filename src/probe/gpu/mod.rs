//! `gpu`: NVML or Jetson sysfs behind one trait.
//!
//! A [`GpuBackend`] answers a plain [`GpuSample`]; [`to_reading`] turns a sample into the
//! check's [`Reading`]. The backend is picked at the first reading (`backend = "auto"`:
//! NVML when it initialises, finds device `device` and answers memory info; else the Jetson
//! sysfs GPU when its devfreq device exists; else none, and the check is `unknown` with
//! both reasons). While no backend is found the choice is tried again at each reading, so a
//! driver that loads after vigild is picked up. Every NVML call and sysfs read runs on the
//! blocking pool (`sys::blocking::Blocking`).

pub mod backend;
pub mod jetson;
pub mod nvml;
pub mod probe;

pub use crate::core::check::GpuChoice;
pub use backend::{to_reading, GpuBackend, GpuError, GpuSample};
pub use probe::{select, GpuProbe, NvmlOpener};
