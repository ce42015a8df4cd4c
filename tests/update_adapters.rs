//! The update's Docker adapters against the real dockerd and the busybox test image
//! (scripts/test.sh starts and builds both; these tests fail loudly when either is missing):
//! the tags an archive from `docker save` carries, what they name before a load, `docker
//! load` moving them to the new image, and `restore` putting them back (removing the ones
//! that did not exist). Each test uses tags of its own and removes what it made.

mod docker_support;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use docker_support::{docker, docker_ok, require_docker, IMAGE};
use vigil::sys::docker::{DockerConn, DEFAULT_HOST};
use vigil::update::images::{docker_root, image_id, load, restore, tag_ids, tags_in_archive};

/// Tags of one test, `vigil-test/update-<pid>-<n>-<short>:1`; on drop every one is removed
/// (and the images only they named with them).
struct Tags {
    prefix: String,
    made: Vec<String>,
}

impl Tags {
    fn new() -> Tags {
        static N: AtomicU32 = AtomicU32::new(0);
        Tags {
            prefix: format!(
                "vigil-test/update-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ),
            made: Vec::new(),
        }
    }

    fn tag(&mut self, short: &str) -> String {
        let t = format!("{}-{short}:1", self.prefix);
        self.made.push(t.clone());
        t
    }
}

impl Drop for Tags {
    fn drop(&mut self) {
        for t in &self.made {
            let _ = Command::new("docker")
                .args(["rmi", t])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A container removed (`docker rm -f`) on drop.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The id `reference` names, by the CLI.
fn id_of(reference: &str) -> String {
    docker(&["image", "inspect", "--format", "{{.Id}}", reference])
}

/// Builds an image distinct from the test image (a file `/v` saying `what`) with `tags`;
/// its id. The classic builder, so nothing is fetched.
fn build(what: &str, tags: &[&str]) -> String {
    let dockerfile = format!("FROM {IMAGE}\nRUN echo {what} > /v\n");
    let mut args = vec!["build", "-q"];
    for t in tags {
        args.extend(["-t", t]);
    }
    args.push("-");
    let mut child = Command::new("docker")
        .args(&args)
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker build runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dockerfile.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    id_of(tags[0])
}

async fn client() -> bollard::Docker {
    require_docker();
    DockerConn::new(DEFAULT_HOST)
        .client()
        .await
        .expect("dockerd answers through the Engine API")
}

/// A new image saved under two tags: `old` (which names the test image again afterwards)
/// and `fresh` (which is gone afterwards, with the new image). The archive's path, the new
/// image's id.
fn saved_update(dir: &std::path::Path, old: &str, fresh: &str) -> (std::path::PathBuf, String) {
    let new_id = build(&format!("{old}-{}", std::process::id()), &[old, fresh]);
    let archive = dir.join("images.tar");
    docker(&["save", "-o", archive.to_str().unwrap(), old, fresh]);
    // Back to before the update: `old` names the test image, `fresh` nothing, the new
    // image is not in dockerd at all.
    docker(&["tag", IMAGE, old]);
    docker(&["rmi", fresh]);
    assert!(
        !docker_ok(&["image", "inspect", &new_id]),
        "the new image is gone"
    );
    (archive, new_id)
}

#[tokio::test]
async fn load_moves_the_tags_and_restore_puts_them_back() {
    let d = client().await;
    let mut tags = Tags::new();
    let (old, fresh) = (tags.tag("app"), tags.tag("sidecar"));
    let dir = tempfile::tempdir().unwrap();
    let (archive, new_id) = saved_update(dir.path(), &old, &fresh);
    let old_id = id_of(IMAGE);

    let mut carried = tags_in_archive(&archive).unwrap();
    carried.sort();
    let mut expected = vec![old.clone(), fresh.clone()];
    expected.sort();
    assert_eq!(carried, expected);

    let before = tag_ids(&d, &carried).await.unwrap();
    let want: BTreeMap<String, Option<String>> =
        [(old.clone(), Some(old_id.clone())), (fresh.clone(), None)]
            .into_iter()
            .collect();
    assert_eq!(before, want);

    load(&d, &archive).await.unwrap();
    let after = tag_ids(&d, &carried).await.unwrap();
    assert_eq!(after[&old].as_deref(), Some(new_id.as_str()));
    assert_eq!(after[&fresh].as_deref(), Some(new_id.as_str()));

    restore(&d, &before).await.unwrap();
    assert_eq!(tag_ids(&d, &carried).await.unwrap(), before);
    // Again: nothing left to do, and no error.
    restore(&d, &before).await.unwrap();
    assert_eq!(tag_ids(&d, &carried).await.unwrap(), before);
    assert_eq!(id_of(IMAGE), old_id, "the test image is untouched");
    assert!(
        !docker_ok(&["image", "inspect", &new_id]),
        "the new image went with its tags"
    );
}

#[tokio::test]
async fn restore_untags_an_image_a_running_container_uses() {
    let d = client().await;
    let mut tags = Tags::new();
    let (old, fresh) = (tags.tag("app"), tags.tag("sidecar"));
    let dir = tempfile::tempdir().unwrap();
    let (archive, new_id) = saved_update(dir.path(), &old, &fresh);
    let before = tag_ids(&d, &[old.clone(), fresh.clone()]).await.unwrap();
    load(&d, &archive).await.unwrap();
    // The new release's container runs from the tag that did not exist before.
    let container = Container(format!("{}-run", tags.prefix.replace('/', "-")));
    let name = container.0.clone();
    docker(&["run", "-d", "--name", &name, &fresh, "sleep", "100000"]);
    restore(&d, &before).await.unwrap();
    assert_eq!(
        tag_ids(&d, &[old.clone(), fresh.clone()]).await.unwrap(),
        before
    );
    assert_eq!(
        docker(&["inspect", "--format", "{{.State.Running}}", &name]),
        "true",
        "the container runs on"
    );
    drop(container);
    let _ = docker_ok(&["rmi", &new_id]);
}

#[tokio::test]
async fn a_failed_load_and_a_vanished_image_are_errors() {
    let d = client().await;
    let dir = tempfile::tempdir().unwrap();
    // A tar that holds no image.
    let not_images = dir.path().join("not-images.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&not_images).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "hello.txt", &b"hello"[..]).unwrap();
        b.finish().unwrap();
    }
    let e = load(&d, &not_images).await.unwrap_err();
    assert!(e.starts_with("docker load "), "{e}");
    assert!(tags_in_archive(&not_images).is_err());
    // A real archive cut in half.
    let mut tags = Tags::new();
    let (old, fresh) = (tags.tag("app"), tags.tag("sidecar"));
    let (archive, _) = saved_update(dir.path(), &old, &fresh);
    let bytes = std::fs::read(&archive).unwrap();
    let cut = dir.path().join("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert!(load(&d, &cut).await.is_err());
    assert!(load(&d, &dir.path().join("absent.tar")).await.is_err());
    // A tag to put back on an image that is gone.
    let gone: BTreeMap<String, Option<String>> = [(
        fresh.clone(),
        Some("sha256:0000000000000000000000000000000000000000000000000000000000000000".into()),
    )]
    .into_iter()
    .collect();
    let e = restore(&d, &gone).await.unwrap_err();
    assert!(e.contains("is gone"), "{e}");
    assert_eq!(image_id(&d, &fresh).await.unwrap(), None);
    assert_eq!(
        docker_root(&d).await.unwrap(),
        std::path::PathBuf::from(docker(&["info", "--format", "{{.DockerRootDir}}"]))
    );
}
