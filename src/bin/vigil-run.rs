//! vigil-run: runs one hook or exec probe for vigild inside `vigil-run@.service` (a dynamic
//! user, no groups, no access to vigil's state or Docker); the request comes on the socket
//! systemd passes as stdin, the answer goes back on it.

#[tokio::main(flavor = "current_thread")]
async fn main() {
    std::process::exit(vigil::sys::sandbox::serve().await);
}
