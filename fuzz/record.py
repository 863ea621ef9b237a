#!/usr/bin/env python3
"""Records real server streams as seeds for the session_stream target: starts Xvnc (TigerVNC, its patterned
root window) and QEMU (SeaBIOS's text screen, no guest) on loopback, and for each encoding asks for BGRX
pixels and full updates, then keeps what the server sent after ServerInit, prefixed with the target's selector
bytes (fuzz/corpus/session_stream/SERVER-ENCODING). The fuzz target's ServerInit is at most 64 x 64, so QEMU's
stream starts with a DesktopSize to its real size. Needs Xvnc and qemu-system-x86_64; run it by hand when the
seeds should be renewed."""

import os
import socket
import struct
import subprocess
import time

WIDTH, HEIGHT = 64, 48
DISPLAY = 77
XVNC_ENCODINGS = {"raw": 0, "copyrect": 1, "rre": 2, "hextile": 5, "tight": 7, "zrle": 16}
QEMU_ENCODINGS = {"hextile": 5, "zlib": 6, "tight": 7, "zrle": 16, "tightpng": -260}
# DesktopSize, LastRect, Cursor. Not ExtendedDesktopSize: Xvnc answers full requests with only the screen
# layout then.
PSEUDO = [-223, -224, -239]
BGRX = bytes([32, 24, 0, 1]) + struct.pack(">HHH", 255, 255, 255) + bytes([16, 8, 0, 0, 0, 0])
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "session_stream")


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("Xvnc closed the connection")
        data += chunk
    return data


def record(port, encoding):
    """The server's stream after ServerInit, and the framebuffer's size."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    read_exact(sock, 12)
    sock.sendall(b"RFB 003.008\n")
    types = read_exact(sock, read_exact(sock, 1)[0])
    assert 1 in types, f"Xvnc offers no security type None: {types}"
    sock.sendall(bytes([1]))
    assert read_exact(sock, 4) == bytes(4)
    sock.sendall(bytes([1]))
    init = read_exact(sock, 24)
    read_exact(sock, struct.unpack(">I", init[20:24])[0])
    width, height = struct.unpack(">HH", init[:4])
    sock.sendall(bytes([0, 0, 0, 0]) + BGRX)
    encodings = [encoding] + PSEUDO
    sock.sendall(struct.pack(">BBH", 2, 0, len(encodings)) + b"".join(struct.pack(">i", e) for e in encodings))
    # A second full request: its answer repeats the first with the connection's zlib streams already used.
    for _ in range(2):
        sock.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))
        time.sleep(0.3)
    stream = b""
    sock.settimeout(1)
    try:
        while len(stream) < 64 << 10:
            chunk = sock.recv(65536)
            if not chunk:
                break
            stream += chunk
    except socket.timeout:
        pass
    sock.close()
    return stream, width, height


def wait_for(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port}")


def save(name, stream):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(stream)
    print(f"{name}: {len(stream)} bytes")


def main():
    port = 5900 + DISPLAY
    servers = {
        "xvnc": (["Xvnc", f":{DISPLAY}", "-geometry", f"{WIDTH}x{HEIGHT}", "-depth", "24", "-retro",
                  "-SecurityTypes", "None", "-localhost", "-rfbport", str(port), "-nolisten", "tcp"], XVNC_ENCODINGS),
        "qemu": (["qemu-system-x86_64", "-nodefaults", "-vga", "std", "-display", "none",
                  "-vnc", f"127.0.0.1:{DISPLAY}"], QEMU_ENCODINGS),
    }
    for server_name, (command, encodings) in servers.items():
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(port)
            time.sleep(2)
            for name, encoding in encodings.items():
                stream, width, height = record(port, encoding)
                # BGRX server format, the default configuration (which asks for BGRX too), at most 64 x 64.
                w, h = min(width, 64), min(height, 64)
                prefix = bytes([0, 0, w - 1, h - 1])
                if (w, h) != (width, height):
                    prefix += bytes([0, 0, 0, 1]) + struct.pack(">HHHHi", 0, 0, width, height, -223)
                save(f"{server_name}-{name}", prefix + stream)
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
