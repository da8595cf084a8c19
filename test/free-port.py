# free-port.py: print a port free for both UDP and TCP on 127.0.0.1, for
# a peer that cannot be given port 0 (dnsmasq, unbound, dnsdist).
import socket

for _ in range(100):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", port))
    except OSError:
        u.close()
        t.close()
        continue
    print(port)
    break
