//! The heartbeat's listening sockets as systemd hands them over (socket activation).

/// Listeners handed over by systemd (`LISTEN_FDS`), if any.
pub fn systemd_listeners() -> std::io::Result<Vec<std::net::TcpListener>> {
    use std::os::fd::FromRawFd;
    let fds: Vec<_> = sd_notify::listen_fds()?.collect();
    let mut out = Vec::new();
    for fd in fds {
        // SAFETY: systemd passed us this descriptor and nothing else owns it.
        let l = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        l.set_nonblocking(true)?;
        out.push(l);
    }
    Ok(out)
}
