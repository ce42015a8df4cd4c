//! Man pages and shell completions are generated from the command-line definitions and
//! checked in under packaging/; this fails when they are out of date.
//! Regenerate with `VIGIL_BLESS=1 cargo test --test manpages`.

use clap::CommandFactory;
use vigil::cli::{VigilctlArgs, VigildArgs};

fn man(cmd: clap::Command, section: &str) -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .section(section)
        .render(&mut out)
        .unwrap();
    out
}

fn completion(shell: clap_complete::Shell, cmd: &mut clap::Command, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, cmd, name, &mut out);
    out
}

fn check(path: &str, generated: Vec<u8>) {
    let path = std::path::Path::new(path);
    if std::env::var_os("VIGIL_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &generated).unwrap();
    }
    let on_disk = std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e} (generate with VIGIL_BLESS=1)", path.display()));
    assert!(
        on_disk == generated,
        "{} is out of date: VIGIL_BLESS=1 cargo test --test manpages",
        path.display()
    );
}

#[test]
fn man_pages_and_completions_match_the_command_lines() {
    check("packaging/man/vigild.8", man(VigildArgs::command(), "8"));
    check(
        "packaging/man/vigilctl.1",
        man(VigilctlArgs::command(), "1"),
    );
    for (shell, file) in [
        (
            clap_complete::Shell::Bash,
            "packaging/completions/vigilctl.bash",
        ),
        (clap_complete::Shell::Zsh, "packaging/completions/_vigilctl"),
        (
            clap_complete::Shell::Fish,
            "packaging/completions/vigilctl.fish",
        ),
    ] {
        check(
            file,
            completion(shell, &mut VigilctlArgs::command(), "vigilctl"),
        );
    }
    let page = String::from_utf8(man(VigilctlArgs::command(), "1")).unwrap();
    for sub in [
        "status",
        "checks",
        "incidents",
        "maintenance",
        "policy",
        "version",
    ] {
        assert!(page.contains(sub), "vigilctl(1) documents {sub}");
    }
}
