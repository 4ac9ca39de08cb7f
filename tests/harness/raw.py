"""One INVITE built byte by byte (raw NUL, CR, oversized parts: what SIPp cannot send),
its responses, and the ACK and BYE that end it if it was answered."""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass, field

SDP = (b"v=0\r\no=c 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
       b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
_TO_TAG = re.compile(rb"\r\nTo:[^\r]*?;tag=([^\r;>]+)", re.IGNORECASE)


@dataclass
class Exchange:
    statuses: list[int] = field(default_factory=list)
    final: bytes = b""
    setup_s: float = 0.0  # INVITE sent to final response received

    @property
    def code(self) -> int:
        return self.statuses[-1] if self.statuses else 0


def invite(
    target: tuple[str, int], *, source: str = "127.0.0.2", user: bytes = b"081234567890",
    dialled: bytes = b"112", extra: bytes = b"", body: bytes | None = None, timeout: float = 10.0,
) -> Exchange:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(timeout)
        port = sock.getsockname()[1]
        sdp = SDP.replace(b"{ip}", source.encode()) if body is None else body
        call_id = b"raw-%d@%s" % (port, source.encode())

        def request(method: bytes, cseq: int, to_tag: bytes = b"") -> bytes:
            head = (
                b"%s sip:%s@%s:%d SIP/2.0\r\n" % (method, dialled, target[0].encode(), target[1])
                + b"Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-%d-%s-%d\r\n"
                % (source.encode(), port, port, method, cseq)
                + b"From: <sip:" + user + b"@" + source.encode() + b">;tag=raw1\r\n"
                + b"To: <sip:" + dialled + b"@" + target[0].encode() + b">"
                + (b";tag=" + to_tag if to_tag else b"") + b"\r\n"
                + b"Call-ID: " + call_id + b"\r\n"
                + b"CSeq: %d %s\r\n" % (cseq, method)
                + b"Contact: <sip:caller@%s:%d>\r\nMax-Forwards: 70\r\n" % (source.encode(), port)
            )
            if method != b"INVITE":
                return head + b"Content-Length: 0\r\n\r\n"
            return (head + extra + b"Content-Type: application/sdp\r\n"
                    + b"Content-Length: %d\r\n\r\n" % len(sdp) + sdp)

        sent = time.perf_counter()
        sock.sendto(request(b"INVITE", 1), target)
        found = Exchange()
        while found.code < 200:
            data = sock.recv(65535)
            found.statuses.append(int(data.split(b" ", 2)[1]))
            found.final = data
        found.setup_s = time.perf_counter() - sent
        if found.code < 300:
            tag = _TO_TAG.search(found.final)
            to_tag = tag.group(1) if tag else b""
            sock.sendto(request(b"ACK", 1, to_tag), target)
            sock.sendto(request(b"BYE", 2, to_tag), target)
            while int(sock.recv(65535).split(b" ", 2)[1]) < 200:
                pass
        return found
