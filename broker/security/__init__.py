"""Who gets in and to what: password files, SCRAM, TLS identities, ACL files, per-listener
policies and the delays after failures; built-in hooks like any user's."""
