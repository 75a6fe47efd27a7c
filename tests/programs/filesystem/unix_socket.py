"""A unix-socket server and client in one run, for tests/filesystem.rs.

Binds a stream socket at the path given (in the tree the test overlays), forks a client that
connects to the same path, sends a line and reads the reply, and prints what each side saw.
The socket file is left where it is: the sandbox reports it as created, and discards it.
"""

import os
import socket
import stat
import sys

path = sys.argv[1]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(1)
print("socket file:", stat.S_ISSOCK(os.lstat(path).st_mode), flush=True)

pid = os.fork()
if pid == 0:
    server.close()
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(path)
    client.sendall(b"ping from the client\n")
    reply = client.makefile("rb").readline().decode().strip()
    print("client got:", reply, flush=True)
    os._exit(0)

conn, _ = server.accept()
line = conn.makefile("rb").readline().decode().strip()
print("server got:", line, flush=True)
conn.sendall(b"pong from the server\n")
_, status = os.waitpid(pid, 0)
print("client exit:", os.waitstatus_to_exitcode(status), flush=True)
conn.close()
server.close()
