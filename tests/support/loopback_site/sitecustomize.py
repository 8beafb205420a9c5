"""Loaded by every Python process a test starts with this folder on PYTHONPATH (Python imports
`sitecustomize` at start-up), behind the repository root: its sockets may connect only to
loopback, as the test's own may, so a command run as a subprocess cannot reach a real Google or
W&B host either.

    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(LOOPBACK_SITE)])
"""

import socket

from tests.support.loopback import loopback_only

socket.socket.connect = loopback_only(socket.socket.connect)
socket.socket.connect_ex = loopback_only(socket.socket.connect_ex)
