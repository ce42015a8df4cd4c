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
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and not __fish_seen_subcommand_from on off status help" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and not __fish_seen_subcommand_from on off status help" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and not __fish_seen_subcommand_from on off status help" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and not __fish_seen_subcommand_from on off status help" -f -a "on" -d 'Turn it on; it ends by itself'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and not __fish_seen_subcommand_from on off status help" -f -a "off" -d 'Turn it off now'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and not __fish_seen_subcommand_from on off status help" -f -a "status" -d 'Whether it is on, until when and why'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and not __fish_seen_subcommand_from on off status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from on" -l for -d 'How long, e.g. 30m, 2h' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from on" -l reason -d 'Why, for the journal and the status' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from on" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from on" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from on" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from off" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from off" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from off" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from status" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from status" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from help" -f -a "on" -d 'Turn it on; it ends by itself'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from help" -f -a "off" -d 'Turn it off now'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand maintenance; and __fish_seen_subcommand_from help" -f -a "status" -d 'Whether it is on, until when and why'
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
complete -c vigilctl -n "__fish_vigilctl_using_subcommand version" -l bus -d 'D-Bus address of vigild [default: the system bus, then the session bus]' -r
complete -c vigilctl -n "__fish_vigilctl_using_subcommand version" -l json -d 'Print JSON instead of text'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand version" -s h -l help -d 'Print help'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and not __fish_seen_subcommand_from status checks incidents incident maintenance policy version help" -f -a "status" -d 'Overall status and the checks that are not ok'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and not __fish_seen_subcommand_from status checks incidents incident maintenance policy version help" -f -a "checks" -d 'Every check with its status, since when, and why'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and not __fish_seen_subcommand_from status checks incidents incident maintenance policy version help" -f -a "incidents" -d 'Incidents: open ones, or all with --all'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and not __fish_seen_subcommand_from status checks incidents incident maintenance policy version help" -f -a "incident" -d 'One incident with every action taken for it'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and not __fish_seen_subcommand_from status checks incidents incident maintenance policy version help" -f -a "maintenance" -d 'Maintenance mode: suspend every recovery action for a while; checks go on'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and not __fish_seen_subcommand_from status checks incidents incident maintenance policy version help" -f -a "policy" -d 'Policy files: check them, or show the effective set'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and not __fish_seen_subcommand_from status checks incidents incident maintenance policy version help" -f -a "version" -d 'Versions of vigilctl and of the running vigild'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and not __fish_seen_subcommand_from status checks incidents incident maintenance policy version help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and __fish_seen_subcommand_from maintenance" -f -a "on" -d 'Turn it on; it ends by itself'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and __fish_seen_subcommand_from maintenance" -f -a "off" -d 'Turn it off now'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and __fish_seen_subcommand_from maintenance" -f -a "status" -d 'Whether it is on, until when and why'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "check" -d 'Validate policy files or directories (default: the installed ones); exit 1 on any error'
complete -c vigilctl -n "__fish_vigilctl_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "show" -d 'Show the effective, merged checks of policy files or directories (default: installed)'
