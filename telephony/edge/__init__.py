"""The SIP edge: Kamailio in front of Asterisk (docs/edge.md).

`render` writes its runtime directory from kamailio/ and the config, `process` runs it,
`pidf` answers its question whether a PIDF-LO is safe for Asterisk (and hears of phones
that registered, which `registered` has Asterisk qualify at once), `stats` reads its
counters. The headers the edge and Asterisk share are in telephony.contract.
"""
