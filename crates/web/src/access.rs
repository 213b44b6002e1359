//! Who may see and do what, decided once per request from the user's level (LibreNMS's
//! levels) and device grants, then asked by every handler:
//!
//! - **admin** (level 10): everything, including every change.
//! - **global read** (level 5, and LibreNMS's demo level 11): sees every device, port, graph,
//!   alert and the cluster views; changes nothing.
//! - **normal user** (level 1): sees only the devices granted to them (`devices_perms`) with
//!   their ports and graphs; no cluster views, no alerts, no changes.
//!
//! A device the caller may not see answers as an unknown one (404), so that its existence
//! is not revealed; a refused action answers 403 naming the role it needs.

use std::collections::BTreeSet;

use lookout_core::{Device, DeviceId};
use lookout_store::{Store, StoreError, User};

/// LibreNMS's global read-only level.
pub(crate) const READ_LEVEL: i32 = 5;
/// LibreNMS's admin level.
pub(crate) const ADMIN_LEVEL: i32 = 10;
/// LibreNMS's demo user: sees everything, changes nothing (as global read here).
pub(crate) const DEMO_LEVEL: i32 = 11;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Admin,
    GlobalRead,
    Normal,
}

impl Role {
    pub(crate) fn of_level(level: i32) -> Role {
        match level {
            DEMO_LEVEL => Role::GlobalRead,
            l if l >= ADMIN_LEVEL => Role::Admin,
            l if l >= READ_LEVEL => Role::GlobalRead,
            _ => Role::Normal,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::GlobalRead => "global read",
            Role::Normal => "normal user",
        }
    }
}

/// What one caller may see and do.
#[derive(Clone, Debug)]
pub(crate) struct Access {
    pub(crate) role: Role,
    /// The devices a normal user was granted; empty for the other roles (they see all).
    granted: BTreeSet<DeviceId>,
}

impl Access {
    /// Reads the grants of a normal user; admins and global readers need none.
    pub(crate) async fn of(store: &Store, user: &User) -> Result<Access, StoreError> {
        let role = Role::of_level(user.level);
        let granted = if role == Role::Normal {
            store
                .device_perms(user.user_id)
                .await?
                .into_iter()
                .collect()
        } else {
            BTreeSet::new()
        };
        Ok(Access { role, granted })
    }

    pub(crate) fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Sees every device and the cluster-wide views (poller, status, alerts).
    pub(crate) fn sees_all(&self) -> bool {
        self.role != Role::Normal
    }

    pub(crate) fn can_see(&self, device_id: DeviceId) -> bool {
        self.sees_all() || self.granted.contains(&device_id)
    }

    /// The devices of `devices` this caller may see, in their order.
    pub(crate) fn visible(&self, mut devices: Vec<Device>) -> Vec<Device> {
        if !self.sees_all() {
            devices.retain(|d| self.granted.contains(&d.device_id));
        }
        devices
    }
}

/// The 403 message for an action that needs `need`.
pub(crate) fn needs(need: Role) -> String {
    let what = match need {
        Role::Admin => "admin (level 10)",
        Role::GlobalRead | Role::Normal => "global read (level 5) or admin",
    };
    format!("insufficient permissions: this needs {what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_roles() {
        for (level, role) in [
            (0, Role::Normal),
            (1, Role::Normal),
            (4, Role::Normal),
            (5, Role::GlobalRead),
            (9, Role::GlobalRead),
            (10, Role::Admin),
            (11, Role::GlobalRead),
            (12, Role::Admin),
        ] {
            assert_eq!(Role::of_level(level), role, "level {level}");
        }
    }

    #[test]
    fn a_normal_user_sees_only_granted_devices() {
        let a = Access {
            role: Role::Normal,
            granted: [2, 5].into_iter().collect(),
        };
        assert!(a.can_see(2) && a.can_see(5));
        assert!(!a.can_see(3));
        assert!(!a.sees_all() && !a.is_admin());
        let reader = Access {
            role: Role::GlobalRead,
            granted: BTreeSet::new(),
        };
        assert!(reader.can_see(3) && reader.sees_all() && !reader.is_admin());
    }
}
