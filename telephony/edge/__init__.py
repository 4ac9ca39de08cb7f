"""The SIP edge: Kamailio in front of Asterisk (docs/edge.md).

`render` writes its runtime directory from kamailio/ and the config, `process` runs it,
`pidf` answers its question whether a PIDF-LO is safe for Asterisk, `stats` reads its
counters.
"""

from __future__ import annotations

# Set by the edge alone (it removes any a trunk sends): the trunk Asterisk identifies the
# call by, and the address the INVITE came from (PJSIP_HEADER(read,X-Telephony-Source)).
TRUNK_HEADER = "X-Telephony-Trunk"
SOURCE_HEADER = "X-Telephony-Source"
