//! USB sticks for tests: a file system in an image file, attached to a loop device that stays
//! attached until the [`Stick`] is dropped (also when a test panics). FAT (mkfs.vfat,
//! package dosfstools) as on a real stick, its files copied on through a short mount; or,
//! where the running kernel cannot mount FAT (some CI kernels have no vfat), ext4 made
//! with its files by `mkfs.ext4 -d` ([`Stick::with_files`] chooses and says so). Needs
//! root and `losetup`; a missing piece is a loud failure, never a skip.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A stick: an image on a loop device, detached on drop.
pub struct Stick {
    pub image: PathBuf,
    /// The loop device's kernel name, `loop3`: what udev calls it, and the unit instance.
    pub dev: String,
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} cannot run ({e}): scripts/test.sh installs it"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Stick {
    /// A FAT stick of 16 MiB labelled `label` at `dir/NAME.img`, holding `files` (its path on
    /// the stick, the host file copied there).
    pub fn fat(dir: &Path, label: &str, files: &[(&str, &Path)]) -> Stick {
        let image = dir.join(format!("{label}.img"));
        let f = std::fs::File::create(&image).unwrap();
        f.set_len(16 << 20).unwrap();
        drop(f);
        run("mkfs.vfat", &["-n", label, image.to_str().unwrap()]);
        let stick = Stick::attach(image);
        if !files.is_empty() {
            let mnt = tempfile::tempdir().unwrap();
            let m = mnt.path().to_str().unwrap();
            run("mount", &[&format!("/dev/{}", stick.dev), m]);
            let copied = std::panic::catch_unwind(|| {
                for (to, from) in files {
                    let dest = mnt.path().join(to);
                    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                    std::fs::copy(from, &dest).unwrap();
                }
            });
            run("umount", &[m]);
            if let Err(e) = copied {
                std::panic::resume_unwind(e);
            }
        }
        stick
    }

    /// An ext4 stick of 16 MiB labelled `label`, made with `files` in it (root's, readable
    /// by all, as a stick's files are once mounted).
    pub fn ext4(dir: &Path, label: &str, files: &[(&str, &Path)]) -> Stick {
        use std::os::unix::fs::PermissionsExt;
        let image = dir.join(format!("{label}.img"));
        let tree = dir.join(format!("{label}.tree"));
        std::fs::create_dir_all(&tree).unwrap();
        for (to, from) in files {
            let dest = tree.join(to);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(from, &dest).unwrap();
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        run("chmod", &["-R", "a+rX", tree.to_str().unwrap()]);
        let f = std::fs::File::create(&image).unwrap();
        f.set_len(16 << 20).unwrap();
        drop(f);
        run(
            "mkfs.ext4",
            &[
                "-q",
                "-L",
                label,
                "-d",
                tree.to_str().unwrap(),
                image.to_str().unwrap(),
            ],
        );
        Stick::attach(image)
    }

    /// A FAT stick where this kernel mounts FAT, else an ext4 one (said on stderr).
    pub fn with_files(dir: &Path, label: &str, files: &[(&str, &Path)]) -> Stick {
        if kernel_mounts("vfat") {
            Stick::fat(dir, label, files)
        } else {
            eprintln!(
                "usb: this kernel has no vfat (see /proc/filesystems): stick {label} is ext4"
            );
            Stick::ext4(dir, label, files)
        }
    }

    /// A stick of 4 MiB of zeros: no file system.
    pub fn blank(dir: &Path, name: &str) -> Stick {
        let image = dir.join(format!("{name}.img"));
        let f = std::fs::File::create(&image).unwrap();
        f.set_len(4 << 20).unwrap();
        drop(f);
        Stick::attach(image)
    }

    fn attach(image: PathBuf) -> Stick {
        let dev = run("losetup", &["--find", "--show", image.to_str().unwrap()]);
        let dev = dev
            .trim()
            .strip_prefix("/dev/")
            .unwrap_or_else(|| panic!("losetup gave {dev:?}"))
            .to_string();
        Stick { image, dev }
    }

    /// `/dev/loopN`.
    pub fn node(&self) -> String {
        format!("/dev/{}", self.dev)
    }

    /// The device's major:minor, as the kernel numbers it.
    pub fn numbers(&self) -> (u32, u32) {
        let text = std::fs::read_to_string(format!("/sys/class/block/{}/dev", self.dev)).unwrap();
        let (a, b) = text.trim().split_once(':').unwrap();
        (a.parse().unwrap(), b.parse().unwrap())
    }
}

/// Whether the running kernel mounts `fs` (loading its module if it can).
pub fn kernel_mounts(fs: &str) -> bool {
    let known = || {
        std::fs::read_to_string("/proc/filesystems")
            .unwrap_or_default()
            .lines()
            .any(|l| l.split_whitespace().last() == Some(fs))
    };
    if known() {
        return true;
    }
    let _ = Command::new("modprobe").arg(fs).output();
    known()
}

impl Drop for Stick {
    fn drop(&mut self) {
        // Detaches at once, or (still mounted somewhere) as soon as the last user lets go.
        let _ = Command::new("losetup")
            .args(["--detach", &self.node()])
            .status();
    }
}
