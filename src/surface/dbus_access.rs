//! Who may change things over D-Bus: root and members of `vigil-admin`.

use zbus::message::Header;
use zbus::{fdo, Connection};

/// Group whose members may call the mutating methods.
pub const ADMIN_GROUP: &str = "vigil-admin";

/// Allows root and members of `vigil-admin` (the bus policy says the same; this is the
/// second lock, for buses without it).
/// Answers the caller's uid when allowed.
pub async fn authorize(conn: &Connection, header: &Header<'_>, method: &str) -> fdo::Result<u32> {
    let sender = header
        .sender()
        .ok_or_else(|| fdo::Error::AccessDenied("caller has no bus name".into()))?;
    let proxy = fdo::DBusProxy::new(conn).await?;
    let creds = proxy
        .get_connection_credentials(sender.clone().into())
        .await?;
    let uid = creds
        .unix_user_id()
        .ok_or_else(|| fdo::Error::AccessDenied("the bus did not tell the caller's user".into()))?;
    if uid == 0 {
        return Ok(uid);
    }
    let gids = creds.unix_group_ids().cloned();
    // User and group lookups may go to NSS (LDAP, sssd): keep them off the runtime.
    let in_group = tokio::task::spawn_blocking(move || {
        let Ok(Some(group)) = nix::unistd::Group::from_name(ADMIN_GROUP) else {
            return false;
        };
        let gid = group.gid.as_raw();
        match gids {
            Some(gids) => gids.contains(&gid),
            // Older buses do not pass groups: look the user up.
            None => nix::unistd::User::from_uid(uid.into())
                .ok()
                .flatten()
                .map(|u| group.mem.contains(&u.name) || u.gid.as_raw() == gid)
                .unwrap_or(false),
        }
    })
    .await
    .unwrap_or(false);
    if in_group {
        return Ok(uid);
    }
    Err(fdo::Error::AccessDenied(format!(
        "{method} needs root or membership in the {ADMIN_GROUP} group (caller uid {uid})"
    )))
}

/// The caller for logs: `alice (uid 1000)`, or `uid 1000` where no user has that id.
pub async fn caller_name(uid: u32) -> String {
    let name = tokio::task::spawn_blocking(move || {
        nix::unistd::User::from_uid(uid.into())
            .ok()
            .flatten()
            .map(|u| u.name)
    })
    .await
    .ok()
    .flatten();
    match name {
        Some(n) => format!("{n} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}
