# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_vigilctl_global_optspecs
    string join \n bus= json h/help V/version
end

function __fish_vigilctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_vigilctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_vigilctl_using_subcommand
    set -l cmd (__fish_vigilctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c vigilctl -n "__fish_vigilctl_needs_command" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_needs_command" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_needs_command" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_needs_command" -s V -l version -d 'Print version'
complete -c vigilctl -n "__fish_vigilctl_needs_command" -f -a "status" -d 'Overall status and the checks that are not ok'
complete -c vigilctl -n "__fish_vigilctl_needs_command" -f -a "checks" -d 'Every check with its status, since when, and why'
complete -c vigilctl -n "__fish_vigilctl_needs_command" -f -a "incidents" -d 'Incidents: open ones, or all with --all'
complete -c vigilctl -n "__fish_vigilctl_needs_command" -f -a "incident" -d 'One incident with every action taken for it'
complete -c vigilctl -n "__fish_vigilctl_needs_command" -f -a "maintenance" -d 'Maintenance mode: suspend every recovery action for a while; checks go on'
complete -c vigilctl -n "__fish_vigilctl_needs_command" -f -a "policy" -d 'Policy files: check them, or show the effective set'
complete -c vigilctl -n "__fish_vigilctl_needs_command" -f -a "update" -d 'Updates: verify a bundle (offline), apply it with the health gate, follow, list or roll back runs, offer a USB stick'
complete -c vigilctl -n "__fish_vigilctl_needs_command" -f -a "bundle" -d 'Make signed update bundles (offline)'
complete -c vigilctl -n "__fish_vigilctl_needs_command" -f -a "support-bundle" -d 'Write a support bundle (tar.gz): status, checks, incidents, update history, policies, settings, vigild\'s journal, containers, units and system facts, secrets redacted. Written even when vigild is down (status.json then says why; exit 0 with a warning)'
complete -c vigilctl -n "__fish_vigilctl_needs_command" -f -a "version" -d 'Versions of vigilctl and of the running vigild'
complete -c vigilctl -n "__fish_vigilctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand status" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand status" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand status" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand checks" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand checks" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand checks" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand incidents" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand incidents" -l all -d 'Include resolved incidents'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand incidents" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand incidents" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand incident" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand incident" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand incident" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and not __fish_seen_subcommand_from on off status log help" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and not __fish_seen_subcommand_from on off status log help" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and not __fish_seen_subcommand_from on off status log help" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and not __fish_seen_subcommand_from on off status log help" -f -a "on" -d 'Turn it on; it ends by itself'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and not __fish_seen_subcommand_from on off status log help" -f -a "off" -d 'Turn it off now (and stop its tunnel)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and not __fish_seen_subcommand_from on off status log help" -f -a "status" -d 'Whether it is on, until when, why, by whom and with which tunnel'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and not __fish_seen_subcommand_from on off status log help" -f -a "log" -d 'Every maintenance session: who turned it on or off, when, why, and each start and stop of a tunnel with what systemd answered'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and not __fish_seen_subcommand_from on off status log help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from on" -l for -d 'How long, e.g. 30m, 2h' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from on" -l reason -d 'Why, for the journal and the status' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from on" -l tunnel -d 'A tunnel unit for remote maintenance, one of `[maintenance] tunnel_units` in vigil.toml (e.g. wg-quick@wg0.service): started now, stopped when the window ends or is turned off' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from on" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from on" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from on" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from off" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from off" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from off" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from status" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from status" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from log" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from log" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from log" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from help" -f -a "on" -d 'Turn it on; it ends by itself'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from help" -f -a "off" -d 'Turn it off now (and stop its tunnel)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from help" -f -a "status" -d 'Whether it is on, until when, why, by whom and with which tunnel'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from help" -f -a "log" -d 'Every maintenance session: who turned it on or off, when, why, and each start and stop of a tunnel with what systemd answered'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand policy; and not __fish_seen_subcommand_from check show help" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand policy; and not __fish_seen_subcommand_from check show help" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand policy; and not __fish_seen_subcommand_from check show help" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand policy; and not __fish_seen_subcommand_from check show help" -f -a "check" -d 'Validate policy files or directories (default: the installed ones); exit 1 on any error'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand policy; and not __fish_seen_subcommand_from check show help" -f -a "show" -d 'Show the effective, merged checks of policy files or directories (default: installed)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand policy; and not __fish_seen_subcommand_from check show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand policy; and __fish_seen_subcommand_from check" -l config -d 'Settings to check rules against (clean_allow, hooks) [default: /etc/vigil/vigil.toml]' -r -F
complete -c vigilctl -n "__fish_vigilctl_using_subcommand policy; and __fish_seen_subcommand_from check" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand policy; and __fish_seen_subcommand_from check" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand policy; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand policy; and __fish_seen_subcommand_from show" -l config -d 'Settings to check rules against [default: /etc/vigil/vigil.toml]' -r -F
complete -c vigilctl -n "__fish_vigilctl_using_subcommand policy; and __fish_seen_subcommand_from show" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand policy; and __fish_seen_subcommand_from show" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand policy; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "check" -d 'Validate policy files or directories (default: the installed ones); exit 1 on any error'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show the effective, merged checks of policy files or directories (default: installed)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and not __fish_seen_subcommand_from verify apply status history rollback usb help" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and not __fish_seen_subcommand_from verify apply status history rollback usb help" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and not __fish_seen_subcommand_from verify apply status history rollback usb help" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and not __fish_seen_subcommand_from verify apply status history rollback usb help" -f -a "verify" -d 'Verify a bundle: signature, every entry, size and hash, version and hardware fit. Exit 0 when it may be applied here, 1 with the reason when not. Writes nothing'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and not __fish_seen_subcommand_from verify apply status history rollback usb help" -f -a "apply" -d 'Apply a bundle: vigild verifies, stages, backs up, applies, waits for the health gate, then commits or rolls back. Shows each state as it passes; exit 0 when committed, 1 when refused, rolled back or failed (with the reason)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and not __fish_seen_subcommand_from verify apply status history rollback usb help" -f -a "status" -d 'The update state: the active or last run with its events, and a bundle a stick offered'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and not __fish_seen_subcommand_from verify apply status history rollback usb help" -f -a "history" -d 'The last update runs, newest first'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and not __fish_seen_subcommand_from verify apply status history rollback usb help" -f -a "rollback" -d 'Roll back the active run, or else the last committed one, and wait like apply: exit 0 when rolled back, 1 when not'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and not __fish_seen_subcommand_from verify apply status history rollback usb help" -f -a "usb" -d 'Offer a mounted USB stick\'s newest bundle (*.vigil in it or in vigil/) to vigild, which applies or only announces it by [update] usb. When it applies, waits until the bundle is off the stick. vigil-usb@.service runs this for a stick plugged in'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and not __fish_seen_subcommand_from verify apply status history rollback usb help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from verify" -l keys -d 'Trusted keys (*.pub) [default: [update] keys_dir, else /etc/vigil/keys]' -r -F
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from verify" -l installed -d 'The installed version to check against [default: the current release of the state directory, if any]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from verify" -l config -d 'Settings (keys_dir, [device] model, state directory) [default: /etc/vigil/vigil.toml]' -r -F
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from verify" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from verify" -l allow-downgrade -d 'Accept a bundle that is not newer than the installed version'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from verify" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from apply" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from apply" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from apply" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from status" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from status" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from history" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from history" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from history" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from rollback" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from rollback" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from rollback" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from usb" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from usb" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from usb" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Verify a bundle: signature, every entry, size and hash, version and hardware fit. Exit 0 when it may be applied here, 1 with the reason when not. Writes nothing'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from help" -f -a "apply" -d 'Apply a bundle: vigild verifies, stages, backs up, applies, waits for the health gate, then commits or rolls back. Shows each state as it passes; exit 0 when committed, 1 when refused, rolled back or failed (with the reason)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from help" -f -a "status" -d 'The update state: the active or last run with its events, and a bundle a stick offered'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from help" -f -a "history" -d 'The last update runs, newest first'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from help" -f -a "rollback" -d 'Roll back the active run, or else the last committed one, and wait like apply: exit 0 when rolled back, 1 when not'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from help" -f -a "usb" -d 'Offer a mounted USB stick\'s newest bundle (*.vigil in it or in vigil/) to vigild, which applies or only announces it by [update] usb. When it applies, waits until the bundle is off the stick. vigil-usb@.service runs this for a stick plugged in'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand update; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand bundle; and not __fish_seen_subcommand_from create help" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand bundle; and not __fish_seen_subcommand_from create help" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand bundle; and not __fish_seen_subcommand_from create help" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand bundle; and not __fish_seen_subcommand_from create help" -f -a "create" -d 'Build a signed bundle: the payload\'s files listed with size and SHA-256, the manifest signed (trusted comment `vigil-bundle NAME VERSION`), written atomically'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand bundle; and not __fish_seen_subcommand_from create help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand bundle; and __fish_seen_subcommand_from create" -l manifest -d 'The manifest ([bundle], [[step]], [gate]; [[file]] may be left out)' -r -F
complete -c vigilctl -n "__fish_vigilctl_using_subcommand bundle; and __fish_seen_subcommand_from create" -l payload -d 'The directory whose files become payload/…' -r -F
complete -c vigilctl -n "__fish_vigilctl_using_subcommand bundle; and __fish_seen_subcommand_from create" -l key -d 'The minisign secret key' -r -F
complete -c vigilctl -n "__fish_vigilctl_using_subcommand bundle; and __fish_seen_subcommand_from create" -l password-file -d 'A file holding the key\'s password (an encrypted key without it is asked for on the terminal)' -r -F
complete -c vigilctl -n "__fish_vigilctl_using_subcommand bundle; and __fish_seen_subcommand_from create" -s o -l out -d 'The bundle to write [default: NAME-VERSION.vigil in the current directory]' -r -F
complete -c vigilctl -n "__fish_vigilctl_using_subcommand bundle; and __fish_seen_subcommand_from create" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand bundle; and __fish_seen_subcommand_from create" -l zstd -d 'Compress the bundle with zstd'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand bundle; and __fish_seen_subcommand_from create" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand bundle; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "create" -d 'Build a signed bundle: the payload\'s files listed with size and SHA-256, the manifest signed (trusted comment `vigil-bundle NAME VERSION`), written atomically'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand support-bundle" -s o -l out -d 'Where to write it: a file, or a directory (such as a USB stick\'s mount point) to write support-HOST-TIME.tar.gz in [default: the current directory]' -r -F
complete -c vigilctl -n "__fish_vigilctl_using_subcommand support-bundle" -l since -d 'How far back vigild\'s journal goes, e.g. 24h, 3d, 30m' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand support-bundle" -l config -d 'Settings (copied redacted; policies are checked against them) [default: /etc/vigil/vigil.toml]' -r -F
complete -c vigilctl -n "__fish_vigilctl_using_subcommand support-bundle" -l policies -d 'Policy files or directories to show [default: the installed ones]' -r -F
complete -c vigilctl -n "__fish_vigilctl_using_subcommand support-bundle" -l journalctl -d 'journalctl to run (tests)' -r -F
complete -c vigilctl -n "__fish_vigilctl_using_subcommand support-bundle" -l systemctl -d 'systemctl to run (tests)' -r -F
complete -c vigilctl -n "__fish_vigilctl_using_subcommand support-bundle" -l os-release -d 'os-release to read (tests)' -r -F
complete -c vigilctl -n "__fish_vigilctl_using_subcommand support-bundle" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand support-bundle" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand support-bundle" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand version" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand version" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand version" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and not __fish_seen_subcommand_from status checks incidents incident maintenance policy update bundle support-bundle version help" -f -a "status" -d 'Overall status and the checks that are not ok'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and not __fish_seen_subcommand_from status checks incidents incident maintenance policy update bundle support-bundle version help" -f -a "checks" -d 'Every check with its status, since when, and why'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and not __fish_seen_subcommand_from status checks incidents incident maintenance policy update bundle support-bundle version help" -f -a "incidents" -d 'Incidents: open ones, or all with --all'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and not __fish_seen_subcommand_from status checks incidents incident maintenance policy update bundle support-bundle version help" -f -a "incident" -d 'One incident with every action taken for it'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and not __fish_seen_subcommand_from status checks incidents incident maintenance policy update bundle support-bundle version help" -f -a "maintenance" -d 'Maintenance mode: suspend every recovery action for a while; checks go on'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and not __fish_seen_subcommand_from status checks incidents incident maintenance policy update bundle support-bundle version help" -f -a "policy" -d 'Policy files: check them, or show the effective set'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and not __fish_seen_subcommand_from status checks incidents incident maintenance policy update bundle support-bundle version help" -f -a "update" -d 'Updates: verify a bundle (offline), apply it with the health gate, follow, list or roll back runs, offer a USB stick'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and not __fish_seen_subcommand_from status checks incidents incident maintenance policy update bundle support-bundle version help" -f -a "bundle" -d 'Make signed update bundles (offline)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and not __fish_seen_subcommand_from status checks incidents incident maintenance policy update bundle support-bundle version help" -f -a "support-bundle" -d 'Write a support bundle (tar.gz): status, checks, incidents, update history, policies, settings, vigild\'s journal, containers, units and system facts, secrets redacted. Written even when vigild is down (status.json then says why; exit 0 with a warning)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and not __fish_seen_subcommand_from status checks incidents incident maintenance policy update bundle support-bundle version help" -f -a "version" -d 'Versions of vigilctl and of the running vigild'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and not __fish_seen_subcommand_from status checks incidents incident maintenance policy update bundle support-bundle version help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and __fish_seen_subcommand_from maintenance" -f -a "on" -d 'Turn it on; it ends by itself'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and __fish_seen_subcommand_from maintenance" -f -a "off" -d 'Turn it off now (and stop its tunnel)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and __fish_seen_subcommand_from maintenance" -f -a "status" -d 'Whether it is on, until when, why, by whom and with which tunnel'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and __fish_seen_subcommand_from maintenance" -f -a "log" -d 'Every maintenance session: who turned it on or off, when, why, and each start and stop of a tunnel with what systemd answered'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "check" -d 'Validate policy files or directories (default: the installed ones); exit 1 on any error'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "show" -d 'Show the effective, merged checks of policy files or directories (default: installed)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and __fish_seen_subcommand_from update" -f -a "verify" -d 'Verify a bundle: signature, every entry, size and hash, version and hardware fit. Exit 0 when it may be applied here, 1 with the reason when not. Writes nothing'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and __fish_seen_subcommand_from update" -f -a "apply" -d 'Apply a bundle: vigild verifies, stages, backs up, applies, waits for the health gate, then commits or rolls back. Shows each state as it passes; exit 0 when committed, 1 when refused, rolled back or failed (with the reason)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and __fish_seen_subcommand_from update" -f -a "status" -d 'The update state: the active or last run with its events, and a bundle a stick offered'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and __fish_seen_subcommand_from update" -f -a "history" -d 'The last update runs, newest first'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and __fish_seen_subcommand_from update" -f -a "rollback" -d 'Roll back the active run, or else the last committed one, and wait like apply: exit 0 when rolled back, 1 when not'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and __fish_seen_subcommand_from update" -f -a "usb" -d 'Offer a mounted USB stick\'s newest bundle (*.vigil in it or in vigil/) to vigild, which applies or only announces it by [update] usb. When it applies, waits until the bundle is off the stick. vigil-usb@.service runs this for a stick plugged in'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "create" -d 'Build a signed bundle: the payload\'s files listed with size and SHA-256, the manifest signed (trusted comment `vigil-bundle NAME VERSION`), written atomically'
