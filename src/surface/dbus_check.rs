//! `org.vigil.Vigil1.Check`: one object per check, its properties read from its state.

use zbus::interface;

use crate::core::health::CheckState;

/// `org.vigil.Vigil1.Check`, one object per check.
pub struct CheckObject {
    pub state: CheckState,
}

#[interface(name = "org.vigil.Vigil1.Check")]
impl CheckObject {
    /// The check's name.
    #[zbus(property)]
    fn name(&self) -> String {
        self.state.name.clone()
    }

    /// The probe kind.
    #[zbus(property)]
    fn probe(&self) -> String {
        self.state.probe.clone()
    }

    /// `ok`, `warn`, `crit` or `unknown`.
    #[zbus(property)]
    fn status(&self) -> String {
        self.state.status.to_string()
    }

    /// When the check entered its status, µs since the epoch.
    #[zbus(property)]
    fn since(&self) -> u64 {
        self.state.since
    }

    /// Why the check has its status.
    #[zbus(property)]
    fn detail(&self) -> String {
        self.state.detail.clone()
    }
}
