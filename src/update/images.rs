//! Docker images of an update: the tags an image archive carries, what they name before it
//! is loaded, `docker load` streamed from the staged file, and putting the tags back on
//! rollback. Through the Engine API (the client of `sys::docker`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::errors::Error as DockerError;
use bollard::query_parameters::{
    ImportImageOptions, RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use hyper::body::Bytes;
use tokio::io::AsyncReadExt;

use crate::sys::docker::{error_text, is_not_found};

/// The most of `manifest.json` or `index.json` read from an archive.
const INDEX_MAX_BYTES: u64 = 16 << 20;
/// How much of the archive goes to dockerd at a time.
const LOAD_CHUNK: usize = 256 << 10;
/// How long dockerd may take to answer a load: it may answer only once it read the whole
/// archive, which can be gigabytes from a slow disk.
const LOAD_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);
/// The OCI annotation of a reference name, and containerd's (a full name) beside it.
const OCI_REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// `docker.io/library/x:1` and `docker.io/x/y:1` the way Docker shows them (`x:1`, `x/y:1`).
fn familiar(name: &str) -> String {
    name.strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .unwrap_or(name)
        .to_string()
}

/// The tags of a `docker save` `manifest.json`: every `RepoTags` entry.
fn tags_of_manifest(v: &serde_json::Value) -> Vec<String> {
    let images = v.as_array().map(Vec::as_slice).unwrap_or_default();
    let tags = images.iter().filter_map(|i| i.get("RepoTags")?.as_array());
    tags.flatten()
        .filter_map(|t| t.as_str().map(familiar))
        .collect()
}

/// The names of an OCI `index.json`: containerd's full name when there is one, else the
/// reference name when it is a whole reference (a bare tag names no repository).
fn tags_of_index(v: &serde_json::Value) -> Vec<String> {
    let manifests = v.get("manifests").and_then(|m| m.as_array());
    let annotations = manifests
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("annotations"));
    annotations
        .filter_map(|a| {
            let full = a.get(CONTAINERD_NAME).and_then(|n| n.as_str());
            let oci = a.get(OCI_REF_NAME).and_then(|n| n.as_str());
            let oci = oci.filter(|n| n.contains('/') || n.contains(':'));
            full.or(oci).map(familiar)
        })
        .collect()
}

/// The repo tags a `docker save` archive carries: its `manifest.json` `RepoTags`, and the
/// names in an OCI `index.json`. Reads the tar entry by entry (skipping the layers by
/// seeking), never unpacks it.
pub fn tags_in_archive(path: &Path) -> Result<Vec<String>, String> {
    let what = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {what}: {e}"))?;
    let mut archive = tar::Archive::new(file);
    let entries = archive
        .entries_with_seek()
        .map_err(|e| format!("{what}: not a tar archive: {e}"))?;
    let (mut tags, mut found) = (Vec::new(), false);
    for entry in entries {
        let entry = entry.map_err(|e| format!("{what}: a damaged tar archive: {e}"))?;
        let name = entry
            .path()
            .map(|p| p.to_string_lossy().trim_start_matches("./").to_string())
            .unwrap_or_default();
        let of: fn(&serde_json::Value) -> Vec<String> = match name.as_str() {
            "manifest.json" => tags_of_manifest,
            "index.json" => tags_of_index,
            _ => continue,
        };
        if entry.size() > INDEX_MAX_BYTES {
            return Err(format!(
                "{what}: its {name} is larger than {INDEX_MAX_BYTES} bytes"
            ));
        }
        let mut text = Vec::new();
        entry
            .take(INDEX_MAX_BYTES)
            .read_to_end(&mut text)
            .map_err(|e| format!("{what}: cannot read its {name}: {e}"))?;
        let v: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| format!("{what}: its {name} is not JSON: {e}"))?;
        found = true;
        for t in of(&v) {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
    }
    if !found {
        return Err(format!(
            "{what}: not an image archive (no manifest.json or index.json; make it with docker save)"
        ));
    }
    Ok(tags)
}

/// Where Docker keeps its data (`docker info`'s `DockerRootDir`), for the space check.
pub async fn docker_root(docker: &Docker) -> Result<PathBuf, String> {
    let info = docker.info().await.map_err(|e| error_text(&e))?;
    info.docker_root_dir
        .map(PathBuf::from)
        .ok_or_else(|| "the Docker engine does not say where its root is".into())
}

/// The id of the image `reference` names now, `None` when it names none.
pub async fn image_id(docker: &Docker, reference: &str) -> Result<Option<String>, String> {
    match docker.inspect_image(reference).await {
        Ok(i) => Ok(i.id),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(format!("image {reference}: {}", error_text(&e))),
    }
}

/// For each tag, the image id it names now (`None` when the tag does not exist).
pub async fn tag_ids(
    docker: &Docker,
    tags: &[String],
) -> Result<BTreeMap<String, Option<String>>, String> {
    let mut out = BTreeMap::new();
    for tag in tags {
        out.insert(tag.clone(), image_id(docker, tag).await?);
    }
    Ok(out)
}

/// The archive as a stream of chunks, read as dockerd takes them.
fn chunks(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; LOAD_CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// `docker load` of the archive at `path` (`POST /images/load`), streamed from the file,
/// never read into memory; an error in the load's answer stream is an error.
pub async fn load(docker: &Docker, path: &Path) -> Result<(), String> {
    let what = path.display();
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| format!("cannot read {what}: {e}"))?;
    let client = docker.clone().with_timeout(LOAD_TIMEOUT);
    let options = ImportImageOptions {
        quiet: true,
        platform: None,
    };
    let mut answers = client.import_image(options, bollard::body_try_stream(chunks(file)), None);
    while let Some(answer) = answers.next().await {
        answer.map_err(|e| format!("docker load {what}: {}", load_error(&e)))?;
    }
    Ok(())
}

fn load_error(e: &DockerError) -> String {
    match e {
        DockerError::DockerStreamError { error } => error.clone(),
        e => error_text(e),
    }
}

/// `repo` and `tag` of a reference (`x/y:1` → `x/y`, `1`; no tag is `latest`).
fn split_tag(reference: &str) -> (&str, &str) {
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[slash..].rfind(':') {
        Some(i) => (&reference[..slash + i], &reference[slash + i + 1..]),
        None => (reference, "latest"),
    }
}

/// Removes the tag `reference` (fine when it is absent). Only the tag: an image that other
/// tags name keeps them; one a running container uses stays, untagged.
async fn untag(docker: &Docker, reference: &str) -> Result<(), String> {
    let mut force = false;
    loop {
        let options = RemoveImageOptionsBuilder::default()
            .force(force)
            .noprune(true)
            .build();
        match docker.remove_image(reference, Some(options), None).await {
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => return Ok(()),
            // In use by a container: only `force` removes the tag (dockerd then keeps an
            // image a running container uses).
            Err(DockerError::DockerResponseServerError {
                status_code: 409, ..
            }) if !force => force = true,
            Err(e) => {
                return Err(format!(
                    "cannot remove the tag {reference}: {}",
                    error_text(&e)
                ))
            }
        }
    }
}

/// Puts every tag back where `before` says: tagged to the image id it named, or removed
/// when it did not exist. Idempotent; every tag is tried, the errors are joined.
pub async fn restore(
    docker: &Docker,
    before: &BTreeMap<String, Option<String>>,
) -> Result<(), String> {
    let mut errors = Vec::new();
    for (tag, id) in before {
        let done = match id {
            None => untag(docker, tag).await,
            Some(id) => retag(docker, tag, id).await,
        };
        if let Err(e) = done {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Points `tag` at the image `id` (nothing to do when it does already).
async fn retag(docker: &Docker, tag: &str, id: &str) -> Result<(), String> {
    if image_id(docker, tag).await?.as_deref() == Some(id) {
        return Ok(());
    }
    let (repo, name) = split_tag(tag);
    let options = TagImageOptionsBuilder::default()
        .repo(repo)
        .tag(name)
        .build();
    docker
        .tag_image(id, Some(options))
        .await
        .map_err(|e| match e {
            e if is_not_found(&e) => {
                format!("cannot tag {tag} back: its old image {id} is gone")
            }
            e => format!("cannot tag {tag} back to {id}: {}", error_text(&e)),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_tag() {
        assert_eq!(split_tag("vigil-test/x:1"), ("vigil-test/x", "1"));
        assert_eq!(
            split_tag("localhost:5000/x:2.0"),
            ("localhost:5000/x", "2.0")
        );
        assert_eq!(
            split_tag("localhost:5000/x"),
            ("localhost:5000/x", "latest")
        );
        assert_eq!(split_tag("busybox"), ("busybox", "latest"));
    }

    #[test]
    fn tags_come_from_the_manifest_and_the_oci_index() {
        let manifest = serde_json::json!([
            {"Config": "c.json", "RepoTags": ["a/b:1", "docker.io/library/c:2"], "Layers": []},
            {"Config": "d.json", "RepoTags": null, "Layers": []}
        ]);
        assert_eq!(tags_of_manifest(&manifest), ["a/b:1", "c:2"]);
        let index = serde_json::json!({"manifests": [
            {"annotations": {CONTAINERD_NAME: "docker.io/a/b:1", OCI_REF_NAME: "1"}},
            {"annotations": {OCI_REF_NAME: "registry.local/e:3"}},
            {"annotations": {OCI_REF_NAME: "4"}},
            {"digest": "sha256:00"}
        ]});
        assert_eq!(tags_of_index(&index), ["a/b:1", "registry.local/e:3"]);
    }

    #[test]
    fn a_tar_without_an_index_is_no_image_archive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tar");
        let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "layer.tar", &b"abc"[..]).unwrap();
        b.finish().unwrap();
        drop(b);
        let e = tags_in_archive(&path).unwrap_err();
        assert!(e.contains("not an image archive"), "{e}");
        assert!(tags_in_archive(&dir.path().join("absent.tar")).is_err());
    }
}
