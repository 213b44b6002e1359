//! The poller's module names, which of them run (a global default plus per-device
//! overrides), and what each one did in a poll (outcome and time).

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

/// A polling module. Names are LibreNMS's poller module names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Module {
    Availability,
    Core,
    Ports,
    Processors,
    Mempools,
    Storage,
}

impl Module {
    /// Every module, in the order a poll runs them.
    pub const ALL: [Module; 6] = [
        Module::Availability,
        Module::Core,
        Module::Ports,
        Module::Processors,
        Module::Mempools,
        Module::Storage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Module::Availability => "availability",
            Module::Core => "core",
            Module::Ports => "ports",
            Module::Processors => "processors",
            Module::Mempools => "mempools",
            Module::Storage => "storage",
        }
    }

    pub fn from_name(name: &str) -> Option<Module> {
        Module::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A bad module list.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ModuleListError {
    #[error("unknown poller module {0:?} (known: availability, core, ports, processors, mempools, storage)")]
    Unknown(String),
    /// `core` decides whether a device is up, so it always runs.
    #[error("the core module cannot be disabled")]
    CoreRequired,
}

/// The modules that run. `core` is always in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleSet {
    enabled: BTreeSet<Module>,
}

impl Default for ModuleSet {
    fn default() -> Self {
        ModuleSet::all()
    }
}

impl ModuleSet {
    pub fn all() -> ModuleSet {
        ModuleSet {
            enabled: Module::ALL.into_iter().collect(),
        }
    }

    pub fn is_enabled(&self, m: Module) -> bool {
        m == Module::Core || self.enabled.contains(&m)
    }

    /// Turns one module on or off (`core` stays on).
    pub fn set(&mut self, m: Module, on: bool) {
        if on || m == Module::Core {
            self.enabled.insert(m);
        } else {
            self.enabled.remove(&m);
        }
    }

    /// Applies a comma-separated list to this set: `name` or `+name` enables, `-name`
    /// disables, e.g. `-storage,-mempools` (the form of `LOOKOUT_POLLER_MODULES`).
    pub fn apply_list(&mut self, list: &str) -> Result<(), ModuleListError> {
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (on, name) = match item.strip_prefix('-') {
                Some(n) => (false, n),
                None => (true, item.strip_prefix('+').unwrap_or(item)),
            };
            let m = Module::from_name(name).ok_or_else(|| ModuleListError::Unknown(name.into()))?;
            if m == Module::Core && !on {
                return Err(ModuleListError::CoreRequired);
            }
            self.set(m, on);
        }
        Ok(())
    }

    /// This set with per-device overrides (`(module name, enabled)`, as the store keeps
    /// them) applied; unknown names (a newer version's modules) are ignored.
    pub fn with_overrides<'a>(
        &self,
        overrides: impl IntoIterator<Item = (&'a str, bool)>,
    ) -> ModuleSet {
        let mut s = self.clone();
        for (name, on) in overrides {
            if let Some(m) = Module::from_name(name) {
                s.set(m, on);
            }
        }
        s
    }
}

/// What a module did in one poll.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", content = "message", rename_all = "lowercase")]
pub enum ModuleOutcome {
    Ok,
    /// Turned off globally or for this device.
    Disabled,
    /// The agent stopped answering or misbehaved part way: nothing was written.
    Failed(String),
}

/// Time one module took, for the UI/API's "where does poll time go".
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModuleTiming {
    pub module: &'static str,
    pub seconds: f64,
    pub outcome: ModuleOutcome,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_overrides() {
        let mut s = ModuleSet::all();
        assert_eq!(s.apply_list("-storage, -mempools"), Ok(()));
        assert!(!s.is_enabled(Module::Storage));
        assert!(s.is_enabled(Module::Ports));
        assert_eq!(s.apply_list("+storage"), Ok(()));
        assert!(s.is_enabled(Module::Storage));
        assert_eq!(s.apply_list("-core"), Err(ModuleListError::CoreRequired));
        assert!(matches!(
            s.apply_list("bgp"),
            Err(ModuleListError::Unknown(_))
        ));
        let d = s.with_overrides([("ports", false), ("future", true), ("core", false)]);
        assert!(!d.is_enabled(Module::Ports));
        assert!(d.is_enabled(Module::Core));
        assert!(s.is_enabled(Module::Ports));
    }
}
