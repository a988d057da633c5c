# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_popgate_global_optspecs
    string join \n h/help V/version
end

function __fish_popgate_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_popgate_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_popgate_using_subcommand
    set -l cmd (__fish_popgate_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c popgate -n "__fish_popgate_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c popgate -n "__fish_popgate_needs_command" -s V -l version -d 'Print version'
complete -c popgate -n "__fish_popgate_needs_command" -f -a "run" -d 'Run the proxy'
complete -c popgate -n "__fish_popgate_needs_command" -f -a "check" -d 'Validate the configuration; exit 1 with every error'
complete -c popgate -n "__fish_popgate_needs_command" -f -a "demo" -d 'A self-contained trial: temporary PKI, a sample mailbox, popgate in front of it'
complete -c popgate -n "__fish_popgate_needs_command" -f -a "policy" -d 'List, show, enable and disable policies'
complete -c popgate -n "__fish_popgate_needs_command" -f -a "action" -d 'List and show proxy actions and the policies using them'
complete -c popgate -n "__fish_popgate_needs_command" -f -a "ca" -d 'Manage the Proxy Authority (and the untrusted CA)'
complete -c popgate -n "__fish_popgate_needs_command" -f -a "cert" -d 'Manage and inspect the certificates in pki/'
complete -c popgate -n "__fish_popgate_needs_command" -f -a "status" -d 'The running daemon: generation, last reload, listeners, sessions, state use (exit 3 when it does not answer)'
complete -c popgate -n "__fish_popgate_needs_command" -f -a "sessions" -d 'Live sessions of the running daemon; `sessions kill ID` ends one'
complete -c popgate -n "__fish_popgate_needs_command" -f -a "quarantine" -d 'List, show, export, delete and purge quarantined originals'
complete -c popgate -n "__fish_popgate_needs_command" -f -a "config" -d 'The effective configuration'
complete -c popgate -n "__fish_popgate_needs_command" -f -a "completions" -d 'Print shell completions (bash, zsh or fish)'
complete -c popgate -n "__fish_popgate_needs_command" -f -a "man" -d 'Write the man pages and completions (packaging step)'
complete -c popgate -n "__fish_popgate_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c popgate -n "__fish_popgate_using_subcommand run" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand run" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand check" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand check" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand demo" -l keep-running -d 'Leave it running and print how to point a client at it'
complete -c popgate -n "__fish_popgate_using_subcommand demo" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and not __fish_seen_subcommand_from list show test enable disable help" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and not __fish_seen_subcommand_from list show test enable disable help" -f -a "list" -d 'List every policy, by order (exit 1 when the configuration is invalid; what could be read is still listed)'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and not __fish_seen_subcommand_from list show test enable disable help" -f -a "show" -d 'Show one policy'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and not __fish_seen_subcommand_from list show test enable disable help" -f -a "test" -d 'Dry run: which policy, action, TLS profile, legs, upstream and certificate a connection would get, and why earlier policies were skipped (exit 1: none matches)'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and not __fish_seen_subcommand_from list show test enable disable help" -f -a "enable" -d 'Enable a policy: rewrite its file\'s "enabled" value, nothing else'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and not __fish_seen_subcommand_from list show test enable disable help" -f -a "disable" -d 'Disable a policy: rewrite its file\'s "enabled" value, nothing else'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and not __fish_seen_subcommand_from list show test enable disable help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from list" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from list" -l json -d 'Print JSON (for scripts) instead of a table'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from show" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from show" -l json -d 'Print JSON (for scripts) instead of a table'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from test" -l from -d 'The client\'s address' -r
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from test" -l to -d 'The original destination (the server the client asked for)' -r
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from test" -l port -d 'The original destination port' -r
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from test" -l sni -d 'The SNI the client sends (pop3s ports)' -r
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from test" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from test" -l json -d 'Print JSON (for scripts) instead of a table'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from test" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from enable" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from enable" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from disable" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from disable" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "list" -d 'List every policy, by order (exit 1 when the configuration is invalid; what could be read is still listed)'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one policy'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "test" -d 'Dry run: which policy, action, TLS profile, legs, upstream and certificate a connection would get, and why earlier policies were skipped (exit 1: none matches)'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "enable" -d 'Enable a policy: rewrite its file\'s "enabled" value, nothing else'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "disable" -d 'Disable a policy: rewrite its file\'s "enabled" value, nothing else'
complete -c popgate -n "__fish_popgate_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c popgate -n "__fish_popgate_using_subcommand action; and not __fish_seen_subcommand_from list show help" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand action; and not __fish_seen_subcommand_from list show help" -f -a "list" -d 'List every proxy action with the policies using it'
complete -c popgate -n "__fish_popgate_using_subcommand action; and not __fish_seen_subcommand_from list show help" -f -a "show" -d 'Show one proxy action and every policy using it, with its TLS support mode'
complete -c popgate -n "__fish_popgate_using_subcommand action; and not __fish_seen_subcommand_from list show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c popgate -n "__fish_popgate_using_subcommand action; and __fish_seen_subcommand_from list" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand action; and __fish_seen_subcommand_from list" -l json -d 'Print JSON (for scripts) instead of a table'
complete -c popgate -n "__fish_popgate_using_subcommand action; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand action; and __fish_seen_subcommand_from show" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand action; and __fish_seen_subcommand_from show" -l json -d 'Print JSON (for scripts) instead of a table'
complete -c popgate -n "__fish_popgate_using_subcommand action; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand action; and __fish_seen_subcommand_from help" -f -a "list" -d 'List every proxy action with the policies using it'
complete -c popgate -n "__fish_popgate_using_subcommand action; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one proxy action and every policy using it, with its TLS support mode'
complete -c popgate -n "__fish_popgate_using_subcommand action; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and not __fish_seen_subcommand_from init import csr install export help" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and not __fish_seen_subcommand_from init import csr install export help" -f -a "init" -d 'Create the Proxy Authority (pki/ca.crt, pki/ca.key) and the untrusted CA (pki/untrusted-ca.crt, pki/untrusted-ca.key)'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and not __fish_seen_subcommand_from init import csr install export help" -f -a "import" -d 'Import an existing CA certificate and key as the Proxy Authority'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and not __fish_seen_subcommand_from init import csr install export help" -f -a "csr" -d 'Create a key and a certificate signing request for a Proxy Authority that the organisation\'s CA signs; install the answer with `popgate ca install`'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and not __fish_seen_subcommand_from init import csr install export help" -f -a "install" -d 'Install the certificate the organisation\'s CA issued for `popgate ca csr`\'s request'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and not __fish_seen_subcommand_from init import csr install export help" -f -a "export" -d 'Print the Proxy Authority\'s certificate, for clients to trust'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and not __fish_seen_subcommand_from init import csr install export help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from init" -l key-type -d 'Key type of both CAs' -r -f -a "ecdsa-p256\t'ECDSA P-256 (fast, the default)'
rsa-2048\t'RSA 2048 bits (for old clients)'
rsa-3072\t'RSA 3072 bits'"
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from init" -l subject -d 'Subject of the Proxy Authority (RFC 4514: "CN=Example Proxy CA,O=Example Ltd,C=GB")' -r
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from init" -l days -d 'Validity in days' -r
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from init" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from init" -l force -d 'Replace existing CA files'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from import" -l cert -d 'The CA certificate (PEM or DER, optionally followed by the chain above it); alone, a single PEM holding both the certificate and its key' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from import" -l key -d 'The CA\'s private key (unencrypted PEM: PKCS#8, PKCS#1 or SEC1)' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from import" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from import" -l force -d 'Replace an existing Proxy Authority (pki/ca.crt, pki/ca.key)'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from import" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from csr" -l subject -d 'Subject of the requested CA certificate (RFC 4514)' -r
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from csr" -l out -d 'Where request.pem and privkey.pem go' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from csr" -l key-type -d 'Key type of the request' -r -f -a "ecdsa-p256\t'ECDSA P-256 (fast, the default)'
rsa-2048\t'RSA 2048 bits (for old clients)'
rsa-3072\t'RSA 3072 bits'"
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from csr" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from csr" -l force -d 'Replace a pending request (and request.pem/privkey.pem in DIR)'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from csr" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from install" -l cert -d 'The signed CA certificate, optionally followed by its chain' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from install" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from export" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from export" -l der -d 'Binary DER instead of PEM'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from help" -f -a "init" -d 'Create the Proxy Authority (pki/ca.crt, pki/ca.key) and the untrusted CA (pki/untrusted-ca.crt, pki/untrusted-ca.key)'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from help" -f -a "import" -d 'Import an existing CA certificate and key as the Proxy Authority'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from help" -f -a "csr" -d 'Create a key and a certificate signing request for a Proxy Authority that the organisation\'s CA signs; install the answer with `popgate ca install`'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from help" -f -a "install" -d 'Install the certificate the organisation\'s CA issued for `popgate ca csr`\'s request'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from help" -f -a "export" -d 'Print the Proxy Authority\'s certificate, for clients to trust'
complete -c popgate -n "__fish_popgate_using_subcommand ca; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c popgate -n "__fish_popgate_using_subcommand cert; and not __fish_seen_subcommand_from server show help" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand cert; and not __fish_seen_subcommand_from server show help" -f -a "server" -d 'Create (--generate) or import (--import) the Proxy Server certificate shown to inbound clients: pki/server.crt and pki/server.key'
complete -c popgate -n "__fish_popgate_using_subcommand cert; and not __fish_seen_subcommand_from server show help" -f -a "show" -d 'Subjects, names and expiry of the Proxy Authority, server and untrusted CA certificates (warns when one expires within 30 days)'
complete -c popgate -n "__fish_popgate_using_subcommand cert; and not __fish_seen_subcommand_from server show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c popgate -n "__fish_popgate_using_subcommand cert; and __fish_seen_subcommand_from server" -l san -d 'The names clients connect to (DNS names or IP addresses); the first is also the common name' -r
complete -c popgate -n "__fish_popgate_using_subcommand cert; and __fish_seen_subcommand_from server" -l days -d 'Validity of the generated certificate in days (default 825; clipped to the Proxy Authority\'s)' -r
complete -c popgate -n "__fish_popgate_using_subcommand cert; and __fish_seen_subcommand_from server" -l import -d 'Import this certificate (PEM or DER, with its chain); alone, a single PEM holding the certificate and its key' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand cert; and __fish_seen_subcommand_from server" -l key -d 'The imported certificate\'s private key' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand cert; and __fish_seen_subcommand_from server" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand cert; and __fish_seen_subcommand_from server" -l generate -d 'Generate a key and a certificate signed by the Proxy Authority'
complete -c popgate -n "__fish_popgate_using_subcommand cert; and __fish_seen_subcommand_from server" -l force -d 'Replace an existing Proxy Server certificate and key'
complete -c popgate -n "__fish_popgate_using_subcommand cert; and __fish_seen_subcommand_from server" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand cert; and __fish_seen_subcommand_from show" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand cert; and __fish_seen_subcommand_from show" -l json -d 'Print JSON (for scripts) instead of a table'
complete -c popgate -n "__fish_popgate_using_subcommand cert; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand cert; and __fish_seen_subcommand_from help" -f -a "server" -d 'Create (--generate) or import (--import) the Proxy Server certificate shown to inbound clients: pki/server.crt and pki/server.key'
complete -c popgate -n "__fish_popgate_using_subcommand cert; and __fish_seen_subcommand_from help" -f -a "show" -d 'Subjects, names and expiry of the Proxy Authority, server and untrusted CA certificates (warns when one expires within 30 days)'
complete -c popgate -n "__fish_popgate_using_subcommand cert; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c popgate -n "__fish_popgate_using_subcommand status" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand status" -l socket -d 'The control socket (default: `control.socket` of DIR/popgate.json)' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand status" -l json -d 'Print JSON (for scripts) instead of a table'
complete -c popgate -n "__fish_popgate_using_subcommand status" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand sessions; and not __fish_seen_subcommand_from kill help" -l policy -d 'Only sessions of this policy' -r
complete -c popgate -n "__fish_popgate_using_subcommand sessions; and not __fish_seen_subcommand_from kill help" -l user -d 'Only sessions of this user' -r
complete -c popgate -n "__fish_popgate_using_subcommand sessions; and not __fish_seen_subcommand_from kill help" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand sessions; and not __fish_seen_subcommand_from kill help" -l socket -d 'The control socket (default: `control.socket` of DIR/popgate.json)' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand sessions; and not __fish_seen_subcommand_from kill help" -l json -d 'Print JSON (for scripts) instead of a table'
complete -c popgate -n "__fish_popgate_using_subcommand sessions; and not __fish_seen_subcommand_from kill help" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand sessions; and not __fish_seen_subcommand_from kill help" -f -a "kill" -d 'End one session; its client gets `-ERR [SYS/TEMP] session ended by the administrator`'
complete -c popgate -n "__fish_popgate_using_subcommand sessions; and not __fish_seen_subcommand_from kill help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c popgate -n "__fish_popgate_using_subcommand sessions; and __fish_seen_subcommand_from kill" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand sessions; and __fish_seen_subcommand_from kill" -l socket -d 'The control socket (default: `control.socket` of DIR/popgate.json)' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand sessions; and __fish_seen_subcommand_from kill" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "kill" -d 'End one session; its client gets `-ERR [SYS/TEMP] session ended by the administrator`'
complete -c popgate -n "__fish_popgate_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and not __fish_seen_subcommand_from list show export delete purge help" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and not __fish_seen_subcommand_from list show export delete purge help" -f -a "list" -d 'List the quarantined messages, oldest first'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and not __fish_seen_subcommand_from list show export delete purge help" -f -a "show" -d 'Show who, when, policy, rule and reason of one message'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and not __fish_seen_subcommand_from list show export delete purge help" -f -a "export" -d 'Write the original message, byte for byte'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and not __fish_seen_subcommand_from list show export delete purge help" -f -a "delete" -d 'Remove one message'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and not __fish_seen_subcommand_from list show export delete purge help" -f -a "purge" -d 'Remove every message quarantined more than DAYS days ago'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and not __fish_seen_subcommand_from list show export delete purge help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from list" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from list" -l json -d 'Print JSON (for scripts) instead of a table'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from show" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from show" -l json -d 'Print JSON (for scripts) instead of a table'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from export" -l out -d 'Write here (created with mode 0600) instead of standard output' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from export" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from delete" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from purge" -l older-than -d 'Age in days (0 removes everything)' -r
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from purge" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from purge" -l json -d 'Print JSON (for scripts) instead of a table'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from purge" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the quarantined messages, oldest first'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show who, when, policy, rule and reason of one message'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from help" -f -a "export" -d 'Write the original message, byte for byte'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Remove one message'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from help" -f -a "purge" -d 'Remove every message quarantined more than DAYS days ago'
complete -c popgate -n "__fish_popgate_using_subcommand quarantine; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c popgate -n "__fish_popgate_using_subcommand config; and not __fish_seen_subcommand_from dump help" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand config; and not __fish_seen_subcommand_from dump help" -f -a "dump" -d 'Print the effective configuration as JSON, every default filled in (`{global, policies, actions, tls_profiles}`); exit 1 with every error when invalid'
complete -c popgate -n "__fish_popgate_using_subcommand config; and not __fish_seen_subcommand_from dump help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c popgate -n "__fish_popgate_using_subcommand config; and __fish_seen_subcommand_from dump" -l config -d 'The configuration directory' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand config; and __fish_seen_subcommand_from dump" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "dump" -d 'Print the effective configuration as JSON, every default filled in (`{global, policies, actions, tls_profiles}`); exit 1 with every error when invalid'
complete -c popgate -n "__fish_popgate_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c popgate -n "__fish_popgate_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c popgate -n "__fish_popgate_using_subcommand man" -l out -d 'Directory to write man/ and completions/ into' -r -F
complete -c popgate -n "__fish_popgate_using_subcommand man" -s h -l help -d 'Print help'
complete -c popgate -n "__fish_popgate_using_subcommand help; and not __fish_seen_subcommand_from run check demo policy action ca cert status sessions quarantine config completions man help" -f -a "run" -d 'Run the proxy'
complete -c popgate -n "__fish_popgate_using_subcommand help; and not __fish_seen_subcommand_from run check demo policy action ca cert status sessions quarantine config completions man help" -f -a "check" -d 'Validate the configuration; exit 1 with every error'
complete -c popgate -n "__fish_popgate_using_subcommand help; and not __fish_seen_subcommand_from run check demo policy action ca cert status sessions quarantine config completions man help" -f -a "demo" -d 'A self-contained trial: temporary PKI, a sample mailbox, popgate in front of it'
complete -c popgate -n "__fish_popgate_using_subcommand help; and not __fish_seen_subcommand_from run check demo policy action ca cert status sessions quarantine config completions man help" -f -a "policy" -d 'List, show, enable and disable policies'
complete -c popgate -n "__fish_popgate_using_subcommand help; and not __fish_seen_subcommand_from run check demo policy action ca cert status sessions quarantine config completions man help" -f -a "action" -d 'List and show proxy actions and the policies using them'
complete -c popgate -n "__fish_popgate_using_subcommand help; and not __fish_seen_subcommand_from run check demo policy action ca cert status sessions quarantine config completions man help" -f -a "ca" -d 'Manage the Proxy Authority (and the untrusted CA)'
complete -c popgate -n "__fish_popgate_using_subcommand help; and not __fish_seen_subcommand_from run check demo policy action ca cert status sessions quarantine config completions man help" -f -a "cert" -d 'Manage and inspect the certificates in pki/'
complete -c popgate -n "__fish_popgate_using_subcommand help; and not __fish_seen_subcommand_from run check demo policy action ca cert status sessions quarantine config completions man help" -f -a "status" -d 'The running daemon: generation, last reload, listeners, sessions, state use (exit 3 when it does not answer)'
complete -c popgate -n "__fish_popgate_using_subcommand help; and not __fish_seen_subcommand_from run check demo policy action ca cert status sessions quarantine config completions man help" -f -a "sessions" -d 'Live sessions of the running daemon; `sessions kill ID` ends one'
complete -c popgate -n "__fish_popgate_using_subcommand help; and not __fish_seen_subcommand_from run check demo policy action ca cert status sessions quarantine config completions man help" -f -a "quarantine" -d 'List, show, export, delete and purge quarantined originals'
complete -c popgate -n "__fish_popgate_using_subcommand help; and not __fish_seen_subcommand_from run check demo policy action ca cert status sessions quarantine config completions man help" -f -a "config" -d 'The effective configuration'
complete -c popgate -n "__fish_popgate_using_subcommand help; and not __fish_seen_subcommand_from run check demo policy action ca cert status sessions quarantine config completions man help" -f -a "completions" -d 'Print shell completions (bash, zsh or fish)'
complete -c popgate -n "__fish_popgate_using_subcommand help; and not __fish_seen_subcommand_from run check demo policy action ca cert status sessions quarantine config completions man help" -f -a "man" -d 'Write the man pages and completions (packaging step)'
complete -c popgate -n "__fish_popgate_using_subcommand help; and not __fish_seen_subcommand_from run check demo policy action ca cert status sessions quarantine config completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "list" -d 'List every policy, by order (exit 1 when the configuration is invalid; what could be read is still listed)'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "show" -d 'Show one policy'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "test" -d 'Dry run: which policy, action, TLS profile, legs, upstream and certificate a connection would get, and why earlier policies were skipped (exit 1: none matches)'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "enable" -d 'Enable a policy: rewrite its file\'s "enabled" value, nothing else'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "disable" -d 'Disable a policy: rewrite its file\'s "enabled" value, nothing else'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from action" -f -a "list" -d 'List every proxy action with the policies using it'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from action" -f -a "show" -d 'Show one proxy action and every policy using it, with its TLS support mode'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from ca" -f -a "init" -d 'Create the Proxy Authority (pki/ca.crt, pki/ca.key) and the untrusted CA (pki/untrusted-ca.crt, pki/untrusted-ca.key)'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from ca" -f -a "import" -d 'Import an existing CA certificate and key as the Proxy Authority'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from ca" -f -a "csr" -d 'Create a key and a certificate signing request for a Proxy Authority that the organisation\'s CA signs; install the answer with `popgate ca install`'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from ca" -f -a "install" -d 'Install the certificate the organisation\'s CA issued for `popgate ca csr`\'s request'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from ca" -f -a "export" -d 'Print the Proxy Authority\'s certificate, for clients to trust'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from cert" -f -a "server" -d 'Create (--generate) or import (--import) the Proxy Server certificate shown to inbound clients: pki/server.crt and pki/server.key'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from cert" -f -a "show" -d 'Subjects, names and expiry of the Proxy Authority, server and untrusted CA certificates (warns when one expires within 30 days)'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "kill" -d 'End one session; its client gets `-ERR [SYS/TEMP] session ended by the administrator`'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from quarantine" -f -a "list" -d 'List the quarantined messages, oldest first'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from quarantine" -f -a "show" -d 'Show who, when, policy, rule and reason of one message'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from quarantine" -f -a "export" -d 'Write the original message, byte for byte'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from quarantine" -f -a "delete" -d 'Remove one message'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from quarantine" -f -a "purge" -d 'Remove every message quarantined more than DAYS days ago'
complete -c popgate -n "__fish_popgate_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "dump" -d 'Print the effective configuration as JSON, every default filled in (`{global, policies, actions, tls_profiles}`); exit 1 with every error when invalid'
