#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets, fuzz/corpus/TARGET/NAME, from the byte vectors of the core's
unit tests (session.rs, handshake.rs, decode/*, messages.rs, vsphere/*, keys.rs, transport/*), rebuilt here with
the selector bytes each target reads first (see rust/nativevnc/src/fuzzing.rs and fuzzing/transport.rs), and
HTTP requests to webmks-sim's APIs (rust/webmks-sim/src/fuzzing.rs). Run it from anywhere; it
replaces the seeds it writes and leaves other files (minimised fuzzer finds, regressions) alone."""

import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

# Encodings (rust/nativevnc/src/encoding.rs).
RAW, COPY_RECT, RRE, HEXTILE, ZLIB, TIGHT, TRLE, ZRLE, TIGHT_PNG = 0, 1, 2, 5, 6, 7, 15, 16, -260
CURSOR, DESKTOP_SIZE, LAST_RECT, EXT_DESKTOP_SIZE = -239, -223, -224, -308
QEMU_POINTER, QEMU_EXT_KEY, QEMU_LED = -257, -258, -261
VMW_DEFINE_CURSOR, VMW_CURSOR_STATE, VMW_CURSOR_POSITION = 0x574D5664, 0x574D5665, 0x574D5666
VMW_TYPEMATIC, VMW_LED, VMW_FRAME_STAMP = 0x574D5667, 0x574D5668, 0x574D567C

# Index of each decoder in fuzzing.rs's PIXEL_ENCODINGS, and of BGRX and the 16-bit format in FORMATS.
DECODER = {RAW: 0, COPY_RECT: 1, RRE: 2, HEXTILE: 3, ZLIB: 4, TIGHT: 5, TIGHT_PNG: 6, TRLE: 7, ZRLE: 8}
BGRX, RGB565, COLOUR_MAP = 0, 4, 7


def u16(n):
    return struct.pack(">H", n)


def u32(n):
    return struct.pack(">I", n)


def i32(n):
    return struct.pack(">i", n)


def rect(x, y, w, h, encoding):
    return u16(x) + u16(y) + u16(w) + u16(h) + i32(encoding)


def update(n):
    return bytes([0, 0]) + u16(n)


def bgrx(*pixels):
    return b"".join(struct.pack("<I", p) for p in pixels)


def deflate(data):
    """Compressed as a connection's zlib stream sends one rectangle: a sync flush, the stream left open."""
    z = zlib.compressobj()
    return z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)


def compact(n):
    """Tight's compact length."""
    out = bytearray([n & 0x7F])
    if n > 0x7F:
        out[0] |= 0x80
        out.append((n >> 7) & 0x7F)
        if n > 0x3FFF:
            out[1] |= 0x80
            out.append(n >> 14)
    return bytes(out)


def png(width, height, rgb):
    """A small RGB PNG, for TightPNG."""

    def chunk(kind, data):
        return u32(len(data)) + kind + data + u32(zlib.crc32(kind + data))

    rows = b"".join(b"\0" + rgb[y * width * 3 : (y + 1) * width * 3] for y in range(height))
    header = u32(width) + u32(height) + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


# One rectangle's data per encoding, for a 4 x 2 rectangle in BGRX (cpixels of 3 bytes).
RECTS = {
    "raw": (RAW, bgrx(*range(0x010101, 0x010101 * 9, 0x010101))),
    "copyrect": (COPY_RECT, u16(0) + u16(0)),
    "rre": (RRE, u32(2) + bgrx(0x112233) + bgrx(0xFF0000) + rect(0, 0, 2, 1, 0)[:8] + bgrx(0xFF) + rect(3, 1, 1, 1, 0)[:8]),
    "hextile-raw": (HEXTILE, bytes([1]) + bgrx(*range(8))),
    "hextile-subrects": (
        HEXTILE,
        bytes([0x0E]) + bgrx(0x101010) + bgrx(0xFFFFFF) + bytes([2, 0x00, 0x11, 0x21, 0x00])
        + bytes([0x1A]) + bgrx(0) + bytes([1]) + bgrx(0xABCDEF) + bytes([0x00, 0x00]),
    ),
    "zlib": (ZLIB, (lambda d: u32(len(d)) + d)(deflate(bgrx(*range(8))))),
    "tight-fill": (TIGHT, bytes([0x80, 0x12, 0x34, 0x56])),
    "tight-basic": (TIGHT, bytes([0x00]) + (lambda d: compact(len(d)) + d)(deflate(bytes(range(24))))),
    "tight-palette": (TIGHT, bytes([0x40, 1, 1]) + bytes([0, 0, 0, 255, 255, 255]) + bytes([0xA5, 0x5A])),
    "tight-gradient": (TIGHT, bytes([0x50, 2]) + (lambda d: compact(len(d)) + d)(deflate(bytes(range(24))))),
    "tightpng-fill": (TIGHT_PNG, bytes([0x80, 0x12, 0x34, 0x56])),
    "tightpng-png": (TIGHT_PNG, (lambda p: bytes([0xA0]) + compact(len(p)) + p)(png(4, 2, bytes(range(24))))),
    "trle-raw": (TRLE, bytes([0]) + bytes(range(24))),
    "trle-solid": (TRLE, bytes([1, 9, 8, 7])),
    "trle-palette": (TRLE, bytes([2, 0, 0, 0, 255, 255, 255, 0b01010101, 0b10101010])),
    "trle-rle": (TRLE, bytes([128, 1, 2, 3, 3, 4, 5, 6, 2])),
    "trle-palette-rle": (TRLE, bytes([130, 0, 0, 0, 255, 255, 255, 0x83, 2, 1])),
    "zrle-raw": (ZRLE, (lambda d: u32(len(d)) + d)(deflate(bytes([0]) + bytes(range(24))))),
    "zrle-palette-rle": (ZRLE, (lambda d: u32(len(d)) + d)(deflate(bytes([130, 0, 0, 0, 255, 255, 255, 0x83, 2, 1])))),
}


def server_stream():
    """The session test's transcript after ServerInit (8 x 4): every message and QEMU pseudo-encoding."""
    v = update(5) + rect(0, 0, 8, 4, RAW) + bgrx(*(i * 0x010101 for i in range(32)))
    v += rect(4, 2, 2, 2, COPY_RECT) + u16(0) + u16(0)
    v += rect(1, 0, 0, 0, QEMU_POINTER) + rect(0, 0, 0, 0, QEMU_LED) + bytes([4]) + rect(0, 0, 0, 0, QEMU_EXT_KEY)
    v += bytes([2]) + bytes([3, 0, 0, 0]) + u32(2) + b"hi" + bytes([1, 0, 0, 0, 0, 1, 0xFF, 0xFF, 0, 0, 0, 0])
    v += update(0xFFFF) + rect(0, 0, 1, 1, RAW) + bgrx(0x090909) + rect(0, 0, 0, 0, LAST_RECT)
    return v


def vmware_stream():
    """The session test's VMware transcript after ServerInit (4 x 2)."""
    v = bytes([127, 0, 0, 8, 0, 2, 0, 0x0A, 127, 200, 0, 7, 1, 2, 3, 127, 4, 0, 6, 0, 5])
    v += bytes([127, 3, 0, 36, 0, 0, 0, 3]) + bytes(28) + bytes([7, 7, 7])
    v += update(7) + rect(1, 1, 1, 1, VMW_DEFINE_CURSOR) + bytes([1, 0, 0, 0, 0xFF, 0xFF])
    v += rect(0, 0, 0, 0, VMW_CURSOR_STATE) + bytes([0, 3]) + rect(2, 1, 0, 0, VMW_CURSOR_POSITION)
    v += rect(0, 0, 0, 0, VMW_TYPEMATIC) + bytes([0, 1, 0, 0, 0x82, 0x35, 0, 7, 0xA1, 0x20])
    v += rect(0, 0, 0, 0, VMW_LED) + u32(2) + rect(0, 0, 0, 0, VMW_FRAME_STAMP) + bytes(8)
    v += rect(0, 0, 4, 2, TIGHT_PNG) + bytes([0x80, 0x12, 0x34, 0x56])
    return v + bytes([127, 7, 0, 8, 0, 0, 0, 23])


def sizes_stream():
    """Resizes, a cursor and a long cut text, after an 8 x 4 ServerInit."""
    v = update(3) + rect(0, 0, 16, 8, DESKTOP_SIZE) + rect(0, 0, 16, 8, EXT_DESKTOP_SIZE) + bytes([1, 0, 0, 0])
    v += bytes(16) + rect(1, 1, 2, 2, CURSOR) + bgrx(1, 2, 3, 4) + bytes([0x80, 0x40])
    return v + bytes([3, 0, 0, 0]) + u32(40) + b"x" * 40


def server_init(width, height, name=b"fuzz"):
    pixel_format = bytes([32, 24, 0, 1]) + u16(255) * 3 + bytes([16, 8, 0, 0, 0, 0])
    return u16(width) + u16(height) + pixel_format + u32(len(name)) + name


def handshakes():
    init = server_init(8, 4)
    return {
        "v38-none": b"RFB 003.008\n" + bytes([1, 1]) + u32(0) + init,
        "v38-vncauth": b"RFB 003.008\n" + bytes([2, 1, 2]) + bytes(range(16)) + u32(0) + init,
        "v38-refused": b"RFB 003.008\n" + bytes([0]) + u32(6) + b"no way",
        "v38-auth-failed": b"RFB 003.008\n" + bytes([1, 2]) + bytes(range(16)) + u32(1) + u32(3) + b"bad",
        "v37-none": b"RFB 003.007\n" + bytes([1, 1]) + init,
        "v33-none": b"RFB 003.003\n" + u32(1) + init,
        "v33-vncauth": b"RFB 003.003\n" + u32(2) + bytes(range(16)) + u32(0) + init,
        "v38-then-update": b"RFB 003.008\n" + bytes([1, 1]) + u32(0) + init + server_stream(),
    }


def client_messages():
    pixel_format = bytes([32, 24, 0, 1]) + u16(255) * 3 + bytes([16, 8, 0, 0, 0, 0])
    return {
        "rfb": bytes([0, 0, 0, 0]) + pixel_format + bytes([2, 0]) + u16(2) + i32(ZRLE) + i32(-223)
        + bytes([3, 1]) + u16(0) * 2 + u16(8) + u16(4) + bytes([4, 1, 0, 0]) + u32(0x61)
        + bytes([5, 1]) + u16(3) + u16(4) + bytes([6, 0, 0, 0]) + u32(2) + b"hi",
        "qemu": bytes([255, 0]) + u16(1) + u32(0x61) + u32(0x1E),
        "vmware": bytes([127, 0]) + u16(8) + u16(0x2C) + bytes([1, 0])
        + bytes([127, 2]) + u16(19) + bytes([1]) + i32(3) + i32(4) + i32(1) + bytes([1, 0])
        + bytes([127, 3]) + u16(8) + u32(0x8100) + bytes([127, 4]) + u16(8) + bytes([9, 0]) + u16(0),
    }


ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>{}</soapenv:Body></soapenv:Envelope>'
)


def soap():
    def response(method, returnval):
        return ENVELOPE.format(f'<{method}Response xmlns="urn:vim25">{returnval}</{method}Response>').encode()

    ticket = (
        '<returnval xsi:type="VirtualMachineTicket"><ticket>52f0-secret-ticket</ticket>'
        "<cfgFile>[datastore1] vm one/vm one.vmx</cfgFile><host>esx1.example.com</host><port>443</port>"
        "<sslThumbprint>" + ":".join(["AB"] * 20) + "</sslThumbprint><certThumbprintList><thumbprint>"
        + ":".join(["CD"] * 32) + "</thumbprint><hashAlgorithm>sha256</hashAlgorithm></certThumbprintList>"
        "<url>wss://esx1.example.com:443/ticket/52f0-secret-ticket</url></returnval>"
    )
    content = (
        '<returnval><rootFolder type="Folder">ha-folder-root</rootFolder>'
        '<propertyCollector type="PropertyCollector">ha-property-collector</propertyCollector>'
        '<viewManager type="ViewManager">ViewManager</viewManager>'
        "<about><name>VMware ESXi</name><apiVersion>8.0.2.0</apiVersion></about>"
        '<sessionManager type="SessionManager">ha-sessionmgr</sessionManager>'
        '<searchIndex type="SearchIndex">ha-searchindex</searchIndex></returnval>'
    )
    names = (
        '<returnval><token>1</token><objects><obj type="VirtualMachine">vm-7</obj><propSet><name>name</name>'
        '<val xsi:type="xsd:string">web &amp; db</val></propSet></objects></returnval>'
    )
    fault = (
        "<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Cannot complete login</faultstring>"
        '<detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault></detail>'
        "</soapenv:Fault>"
    )
    return {
        "ticket": bytes([0]) + response("AcquireTicket", ticket),
        "service-content": bytes([0]) + response("RetrieveServiceContent", content),
        "moref": bytes([0]) + response("FindByInventoryPath", '<returnval type="VirtualMachine">7</returnval>'),
        "name-page": bytes([0]) + response("RetrievePropertiesEx", names),
        "fault": bytes([1]) + ENVELOPE.format(fault).encode(),
        "http-error": bytes([2]) + b"<html><body>Not Found</body></html>",
    }


def rest():
    return {
        "api-value": u16(200) + bytes([0]) + b'[{"vm":"vm-7","name":"web","power_state":"POWERED_ON"}]',
        "rest-value": u16(200) + bytes([1]) + b'{"value":"wss://esx1.example.com:443/ticket/abc"}',
        "api-error": u16(404) + bytes([0])
        + b'{"error_type":"NOT_FOUND","messages":[{"default_message":"no such VM","id":"x"}]}',
        "rest-error": u16(401) + bytes([1])
        + b'{"type":"com.vmware.vapi.std.errors.unauthenticated","value":{"messages":[{"default_message":"no"}]}}',
        "empty": u16(204) + bytes([0]),
    }


URLS = {
    "vm-id": "https://root:s3cret@esx1.example.com/42",
    "port-ipv6": "https://u:p@[fd00::5]:444/1",
    "escaped": "https://administrator%40vsphere.local:p%40ss%3Aw%2Fo%25rd@vc.example.com/vm-1",
    "name": "https://u:p@vc/?name=my%20vm+1",
    "path": "https://u:p@vc/?path=DC1/vm/folder/my%2Bvm",
    "uuid": "https://u:p@vc?uuid=4217a1b2-0000-1111-2222-333344445555",
    "webmks": "webmks+https://u:p@vc/?moid=vm-9",
    "wss": "wss://esx1.example.com:8443/ticket/52f0-secret-ticket",
    "wss-ipv6": "wss://[::1]/ticket/abc",
    "ticket-hosts": "esx1=10.0.0.5, esx2 = [fd00::2],esx3=esx3.lab",
}

CHORDS = ["ctrl-alt-delete", "shift-a", "super-ret", "ctrl-alt-f2", "minus", "alt-sysrq-b", "Ctrl-Shift-Esc", "a-"]


# The `websocket` target's records (rust/nativevnc/src/fuzzing/transport.rs): HEAD LEN [SHIFT] PAYLOAD, HEAD
# being the opcode and these flags.
FIN, MASK, RSV1, LONG = 0x10, 0x20, 0x40, 0x80
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0, 1, 2, 8, 9, 10


def frame(head, payload, shift=None):
    if shift is not None:
        return bytes([head | LONG, len(payload) if shift == 0 else 1, shift]) + payload
    return bytes([head, len(payload)]) + payload


def websocket():
    """The first byte: the maximum message (16 << low 3 bits) and the piece size (the rest, 0 = at once)."""
    rfb = b"RFB 003.008\n"
    close = frame(CLOSE | FIN, u16(1000) + b"bye")
    return {
        "binary": bytes([7]) + frame(BINARY | FIN, rfb) + close,
        "binary-pieces": bytes([7 | 3 << 3]) + frame(BINARY | FIN, rfb) + frame(BINARY | FIN, bytes([1, 1])) + close,
        "fragments-ping": bytes([7]) + frame(BINARY, rfb[:4]) + frame(PING | FIN, b"ping")
        + frame(CONTINUATION, rfb[4:8]) + frame(PONG | FIN, b"") + frame(CONTINUATION | FIN, rfb[8:]) + close,
        "empty-messages": bytes([7]) + frame(BINARY | FIN, b"") + frame(BINARY, b"") + frame(CONTINUATION | FIN, b"")
        + frame(BINARY | FIN, b"x"),
        "at-the-limit": bytes([0]) + frame(BINARY | FIN, bytes(range(16))) + frame(BINARY | FIN, bytes(range(17))),
        "fragments-over-the-limit": bytes([0]) + frame(BINARY, bytes(9)) + frame(CONTINUATION | FIN, bytes(8)),
        "16-bit-length": bytes([7 | 5 << 3]) + frame(BINARY | FIN, bytes(range(200))) + close,
        "64-bit-length": bytes([7]) + frame(BINARY | FIN, b"long", shift=0) + frame(BINARY | FIN, b"huge", shift=7),
        "masked": bytes([7]) + frame(BINARY | FIN, b"ok") + frame(BINARY | FIN | MASK, b"masked"),
        "reserved-bit": bytes([7]) + frame(BINARY | FIN | RSV1, b"deflated?"),
        "text": bytes([7]) + frame(BINARY | FIN, b"ok") + frame(TEXT | FIN, b"text"),
        "close-codes": bytes([7]) + frame(BINARY | FIN, b"ok") + frame(CLOSE | FIN, u16(1011) + b"server error"),
        "close-invalid": bytes([7]) + frame(CLOSE | FIN, b"\x03"),
        "continuation-first": bytes([7]) + frame(CONTINUATION | FIN, b"x"),
        "binary-inside-binary": bytes([7]) + frame(BINARY, b"a") + frame(BINARY | FIN, b"b"),
        "control-fragmented": bytes([7]) + frame(PING, b"p") + frame(BINARY | FIN, b"x"),
        "control-reserved": bytes([7]) + frame(0x0B | FIN, b"") + frame(BINARY | FIN, b"x"),
        "ping-too-long": bytes([7]) + frame(PING | FIN, bytes(126)),
        "cut-short": bytes([7]) + frame(BINARY | FIN, b"whole") + frame(BINARY | FIN, b"cut short")[:6],
    }


VNC_URLS = {
    "host-port": "vnc://127.0.0.1:5901",
    "password": "vnc://:s%40cret@example.org",
    "ipv6": "vnc://[::1]:5905",
    "upper-case": "VNC://:pw@Host.Example:0",
    "user-name": "vnc://hunter2@127.0.0.1:5911",
    "user-password": "vnc://user:hunter2@host",
    "no-scheme": "127.0.0.1:6602",
    "no-slashes": "vnc:host:5901",
    "no-scheme-password": ":hunter2@host:5901",
    "http": "http://host:5900",
    "path": "vnc://host:5900/path",
    "query": "vnc://host?x=1",
    "bad-utf8-password": "vnc://:%FF@h",
    "no-host": "vnc://",
    "bad-port": "vnc://host:99999",
}

ENVELOPE_SOAP = (
    '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
    ' xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    '<soapenv:Body>{}</soapenv:Body></soapenv:Envelope>'
)


def http(method, path, headers=(), body=b""):
    lines = [f"{method} {path} HTTP/1.1", "Host: vc.test"] + list(headers)
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def soap_call(call, session=True, version="8.0.2.0"):
    headers = ["Content-Type: text/xml; charset=utf-8", f'SOAPAction: "urn:vim25/{version}"']
    if session:
        headers.append('Cookie: vmware_soap_session="$SOAP"; Path=/')
    return http("POST", "/sdk", headers, ENVELOPE_SOAP.format(call).encode())


def sim_requests():
    """Requests as a client sends them to webmks-sim; `$SOAP` and `$REST` stand for live session ids."""
    this = '<_this type="{}">{}</_this>'.format
    vm = this("VirtualMachine", "vm-1001")
    rest_token = ["vmware-api-session-id: $REST"]
    basic = "Authorization: Basic " + __import__("base64").b64encode(b"root:Zq9SimPassword").decode()
    return {
        "service-content": soap_call("<RetrieveServiceContent>" + this("ServiceInstance", "ServiceInstance")
                                     + "</RetrieveServiceContent>", session=False),
        "login-wrong": soap_call("<Login>" + this("SessionManager", "SessionManager")
                                 + "<userName>root</userName><password>wrong</password></Login>", session=False),
        "acquire-ticket": soap_call("<AcquireTicket>" + vm
                                    + '<ticketType xsi:type="xsd:string">webmks</ticketType></AcquireTicket>'),
        "acquire-ticket-7": soap_call("<AcquireTicket>" + vm + "<ticketType>webmks</ticketType></AcquireTicket>",
                                      version="7.0.3.0"),
        "find-by-path": soap_call("<FindByInventoryPath>" + this("SearchIndex", "SearchIndex")
                                  + "<inventoryPath>Datacenter/vm/on</inventoryPath></FindByInventoryPath>"),
        "retrieve-names": soap_call(
            "<RetrievePropertiesEx>" + this("PropertyCollector", "propertyCollector")
            + "<specSet><propSet><type>VirtualMachine</type><pathSet>name</pathSet>"
            "<pathSet>runtime.powerState</pathSet></propSet><objectSet>"
            '<obj type="VirtualMachine">vm-1001</obj></objectSet></specSet><options><maxObjects>1</maxObjects>'
            "</options></RetrievePropertiesEx>"),
        "container-view": soap_call(
            "<CreateContainerView>" + this("ViewManager", "ViewManager") + '<container type="Folder">group-d1'
            "</container><type>VirtualMachine</type><recursive>true</recursive></CreateContainerView>"),
        "power-off": soap_call("<PowerOffVM_Task>" + vm + "</PowerOffVM_Task>"),
        "wait-for-updates": soap_call("<WaitForUpdatesEx>" + this("PropertyCollector", "propertyCollector")
                                      + "<version></version><options><maxWaitSeconds>0</maxWaitSeconds></options>"
                                      "</WaitForUpdatesEx>"),
        "logout-pipelined": soap_call("<CurrentTime>" + this("ServiceInstance", "ServiceInstance") + "</CurrentTime>")
        + soap_call("<Logout>" + this("SessionManager", "SessionManager") + "</Logout>"),
        "not-soap": http("POST", "/sdk", ["Content-Type: text/xml"], b"<html/>"),
        "api-login": http("POST", "/api/session", [basic]),
        "api-vms": http("GET", "/api/vcenter/vm?names=on&names=off", rest_token),
        "api-ticket": http("POST", "/api/vcenter/vm/vm-1001/console/tickets",
                           rest_token + ["Content-Type: application/json"], b'{"type":"WEBMKS"}'),
        "api-session-logout": http("GET", "/api/session", rest_token) + http("DELETE", "/api/session", rest_token),
        "rest-login": http("POST", "/rest/com/vmware/cis/session", [basic]),
        "rest-vms": http("GET", "/rest/vcenter/vm?filter.names.1=on", rest_token),
        "rest-ticket": http("POST", "/rest/vcenter/vm/vm-1002/console/tickets",
                            rest_token + ["Content-Type: application/json"], b'{"spec":{"type":"WEBMKS"}}'),
        "rest-session-get": http("POST", "/rest/com/vmware/cis/session?~action=get", rest_token),
        "wrong-method": http("PUT", "/api/vcenter/vm", rest_token),
        "chunked": b"POST /api/vcenter/vm/vm-1001/console/tickets HTTP/1.1\r\nHost: vc\r\n"
        b"vmware-api-session-id: $REST\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"typ\r\n"
        b"C\r\ne\":\"WEBMKS\"}\r\n0\r\n\r\n",
    }


def write(target, name, data):
    directory = os.path.join(ROOT, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def main():
    for name, stream in handshakes().items():
        for options in (0, 1, 2 | (1 << 2)):
            write("handshake", f"{name}-{options}", bytes([options]) + stream)
    for fmt, dialect, name, width, height, stream in [
        (BGRX, 0, "transcript", 8, 4, server_stream()),
        (BGRX, 1 | (3 << 2), "transcript-pieces", 8, 4, server_stream()),
        (BGRX, 2, "vmware", 4, 2, vmware_stream()),
        (BGRX, 3 | (1 << 2), "vmware-noscancodes", 4, 2, vmware_stream()),
        (BGRX, 1, "sizes", 8, 4, sizes_stream()),
    ]:
        write("session_stream", name, bytes([fmt, dialect, width - 1, height - 1]) + stream)
    for name, (encoding, data) in RECTS.items():
        write("session_stream", f"rect-{name}", bytes([BGRX, 1, 3, 1]) + update(1) + rect(0, 0, 4, 2, encoding) + data)
        write("decoders", name, bytes([DECODER[encoding], BGRX, 0, 4, 2]) + data)
        write("decoders", f"{name}-pieces", bytes([DECODER[encoding], BGRX, 5, 4, 2]) + data)
    write("decoders", "raw-565", bytes([DECODER[RAW], RGB565, 0, 4, 2]) + bytes(range(16)))
    write("decoders", "hextile-colourmap", bytes([DECODER[HEXTILE], COLOUR_MAP, 2, 4, 2]) + bytes([1]) + bytes(range(8)))
    write("vmw_messages", "caps-heartbeat-close", bytes([0, 0, 4]) + u32(0x2002A) + bytes([4, 2]) + u16(5) + bytes([7, 4]) + u32(2))
    write("vmw_messages", "audio-token-unknown", bytes([3, 3, 4]) + u32(0) + bytes([6, 5]) + b"token" + bytes([200, 3, 1, 2, 3]))
    for name, data in client_messages().items():
        write("client_messages", name, data)
    for name, data in soap().items():
        write("soap_response", name, data)
    for name, data in rest().items():
        write("rest_response", name, data)
    for name, text in URLS.items():
        write("url", name, text)
    for i, chord in enumerate(CHORDS):
        write("key_chord", f"chord-{i}", chord)
    for name, data in websocket().items():
        write("websocket", name, data)
    for name, text in VNC_URLS.items():
        write("vnc_url", name, text)
    for name, data in sim_requests().items():
        write("sim_requests", name, data)


if __name__ == "__main__":
    main()
