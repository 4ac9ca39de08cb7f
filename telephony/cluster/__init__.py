"""Several Asterisk nodes behind the SIP edge (issue 18): config/cluster.toml."""
